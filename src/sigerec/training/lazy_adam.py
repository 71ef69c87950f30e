"""Adam that updates only the rows a step touched, for tables too large to update whole.

torch's Adam refuses sparse gradients, and with dense ones every step reads and writes the
whole ID table and its two moment buffers: at a million items that, not the batch, is the
cost of a step. ``LazyAdam`` applies Adam's update to the rows present in a sparse gradient
only (as torch's ``SparseAdam`` and TensorFlow Addons' ``LazyAdam``), and the ordinary Adam
update to parameters with dense gradients (projections, gates, fuser), so one optimiser, one
state dict and one learning-rate scheduler serve a whole model.

Differences from Adam on the sparse tables, the reason the batch step scope is opt-in below a
size (docs/scaling.md): a row's moments decay only when it is touched, and its bias
correction uses the global step count (SparseAdam's choice). Weight decay, when set, is added
to the touched rows' gradients only.
"""

from __future__ import annotations

import torch


class LazyAdam(torch.optim.Optimizer):
    """Adam for dense gradients, lazy Adam (touched rows only) for sparse ones."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                state = self.state[parameter]
                if not state:
                    state["step"] = torch.zeros(())
                    state["exp_avg"] = torch.zeros_like(parameter)
                    state["exp_avg_sq"] = torch.zeros_like(parameter)
                state["step"] += 1
                step = float(state["step"])
                step_size = group["lr"] * (1 - beta2**step) ** 0.5 / (1 - beta1**step)
                if parameter.grad.is_sparse:
                    _sparse_update(parameter, state, group, step_size)
                else:
                    _dense_update(parameter, state, group, step_size)
        return loss


def _dense_update(parameter, state, group, step_size: float) -> None:
    beta1, beta2 = group["betas"]
    grad = parameter.grad
    if group["weight_decay"]:
        grad = grad.add(parameter, alpha=group["weight_decay"])
    state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denominator = state["exp_avg_sq"].sqrt().add_(group["eps"] * (1 - beta2 ** float(state["step"])) ** 0.5)
    parameter.addcdiv_(state["exp_avg"], denominator, value=-step_size)


def _sparse_update(parameter, state, group, step_size: float) -> None:
    beta1, beta2 = group["betas"]
    grad = parameter.grad.coalesce()  # repeated rows summed, as a dense gradient would hold them
    rows, values = grad.indices()[0], grad.values()
    if group["weight_decay"]:
        values = values + group["weight_decay"] * parameter.index_select(0, rows)
    # index_select / index_copy_: several times faster than advanced indexing for many rows.
    exp_avg = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(values, alpha=1 - beta1)
    exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
    state["exp_avg"].index_copy_(0, rows, exp_avg)
    state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
    denominator = exp_avg_sq.sqrt().add_(group["eps"] * (1 - beta2 ** float(state["step"])) ** 0.5)
    parameter.index_add_(0, rows, exp_avg / denominator, alpha=-step_size)
