"""LazyAdam: Adam on dense gradients, Adam on the touched rows only for sparse ones."""

import copy

import pytest
import torch

from sigerec.training.lazy_adam import LazyAdam


def _train(optimizer_class, sparse, rows_per_step, steps=5, weight_decay=0.0):
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.randn(6, 3))
    optimizer = optimizer_class([table], lr=0.1, weight_decay=weight_decay)
    for step in range(steps):
        rows = torch.tensor(rows_per_step(step))
        optimizer.zero_grad(set_to_none=True)
        loss = (torch.nn.functional.embedding(rows, table, sparse=sparse) ** 3).sum()
        loss.backward()
        optimizer.step()
    return table.detach()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_dense_gradients_follow_torch_adam(weight_decay):
    every_row = lambda step: [0, 1, 2, 3, 4, 5, 1]
    expected = _train(torch.optim.Adam, False, every_row, weight_decay=weight_decay)
    torch.testing.assert_close(_train(LazyAdam, False, every_row, weight_decay=weight_decay), expected)


def test_sparse_gradients_touching_every_row_follow_torch_adam():
    every_row = lambda step: [5, 4, 3, 2, 1, 0, 1]  # a repeated row sums its gradients
    torch.testing.assert_close(_train(LazyAdam, True, every_row), _train(torch.optim.Adam, False, every_row))


def test_rows_a_sparse_step_does_not_touch_stay_put():
    torch.manual_seed(0)
    start = torch.randn(6, 3)
    trained = _train(LazyAdam, True, lambda step: [0, 2] if step % 2 else [2])
    torch.testing.assert_close(trained[[1, 3, 4, 5]], start[[1, 3, 4, 5]])
    assert not torch.equal(trained[0], start[0]) and not torch.equal(trained[2], start[2])


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.randn(4, 2))
    optimizer = LazyAdam([table], lr=0.05)

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.embedding(torch.tensor([1, 3]), table, sparse=True).square().sum().backward()
        optimizer.step()

    step()
    saved_table, saved_state = table.detach().clone(), copy.deepcopy(optimizer.state_dict())
    step()
    expected = table.detach().clone()
    with torch.no_grad():
        table.copy_(saved_table)
    optimizer = LazyAdam([table], lr=0.05)
    optimizer.load_state_dict(saved_state)
    step()
    torch.testing.assert_close(table.detach(), expected)
