import numpy as np
import scipy.sparse as sp

from sigerec.training.sampler import TripletSampler


def _train():
    # user 0 has items 0,1; user 1 has item 2; user 2 has items 0..3 (all but item 4)
    rows = [0, 0, 1, 2, 2, 2, 2, 3]
    cols = [0, 1, 2, 0, 1, 2, 3, 4]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(4, 6))


def test_every_training_pair_appears_once_per_epoch():
    sampler = TripletSampler(_train(), batch_size=3)
    pairs = sorted((int(u), int(p)) for users, positives, _ in sampler.epoch(1, 0) for u, p in zip(users, positives))
    assert pairs == [(0, 0), (0, 1), (1, 2), (2, 0), (2, 1), (2, 2), (2, 3), (3, 4)]


def test_negatives_are_training_items_the_user_has_not_seen():
    train = _train()
    sampler = TripletSampler(train, batch_size=8)
    for epoch in range(50):
        for users, _, negatives in sampler.epoch(3, epoch):
            for u, n in zip(users.tolist(), negatives.tolist()):
                assert train[u, n] == 0
                assert n != 5  # item 5 never occurs in training


def test_same_seed_and_epoch_give_the_same_batches_and_epochs_differ():
    sampler = TripletSampler(_train(), batch_size=4)
    first = [b.tolist() for batch in sampler.epoch(7, 2) for b in batch]
    again = [b.tolist() for batch in sampler.epoch(7, 2) for b in batch]
    other_epochs = [[b.tolist() for batch in sampler.epoch(7, e) for b in batch] for e in range(3, 8)]
    assert first == again
    assert any(other != first for other in other_epochs)


def test_number_of_batches_rounds_up():
    assert len(TripletSampler(_train(), batch_size=3)) == 3


def test_user_with_every_candidate_item_is_skipped_not_looped_forever():
    train = sp.csr_matrix(np.array([[1, 1], [1, 0]], dtype=np.float32))
    sampler = TripletSampler(train, batch_size=4)
    assert (sampler.skipped_users, sampler.skipped_pairs) == (1, 2)
    batches = list(sampler.epoch(0, 0))
    assert [b.tolist() for b in batches[0]] == [[1], [0], [1]]
