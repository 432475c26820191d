"""Batch sampling: text-near groups, every prompt once an epoch, rewordings never paired."""

from __future__ import annotations

import numpy as np
import pytest

from v2p.train.sampling import neighbour_batches, text_neighbours


def _clusters(n_clusters: int, size: int, dim: int = 16, spread: float = 0.05, seed: int = 0) -> np.ndarray:
    """Unit vectors in tight clusters around orthogonal centres, shuffled (row i's cluster is returned too)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:n_clusters]
    labels = np.repeat(np.arange(n_clusters), size)
    x = centres[labels] + spread * rng.standard_normal((len(labels), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(labels))
    return x[perm].astype(np.float32), labels[perm]


def test_neighbours_are_the_nearest_rows_best_first_and_blockwise_the_same():
    x, labels = _clusters(4, 5)
    nb = text_neighbours(x, candidates=4, rewording_cosine=1.01)
    assert nb.shape == (20, 4)
    for i in range(20):
        assert i not in nb[i]
        assert (labels[nb[i]] == labels[i]).all()  # the 4 others of its own cluster
        sims = x[nb[i]] @ x[i]
        assert (np.diff(sims) <= 1e-6).all()
    assert (text_neighbours(x, 4, 1.01, block=3) == nb).all()


def test_rewordings_above_the_cap_are_never_neighbours():
    x, _ = _clusters(2, 4)
    twin = np.vstack([x, x[:1]])  # row 8 is row 0 again: cosine 1
    nb = text_neighbours(twin, candidates=8, rewording_cosine=0.999)
    assert 8 not in nb[0] and 0 not in nb[8]
    assert (nb[0] == -1).sum() >= 1  # its slot left empty rather than filled by a rewording


@pytest.mark.parametrize("group", [1, 2, 4, 7])
def test_every_prompt_is_visited_exactly_once_an_epoch(group):
    x, _ = _clusters(5, 9)
    nb = text_neighbours(x, 4 * group, 0.999)
    order = neighbour_batches(nb, group, np.random.default_rng(3))
    assert sorted(order.tolist()) == list(range(45))


def test_groups_hold_text_neighbours():
    x, labels = _clusters(6, 4)
    nb = text_neighbours(x, 16, 0.999)
    order = neighbour_batches(nb, 4, np.random.default_rng(0))
    groups = labels[order].reshape(-1, 4)
    assert (groups == groups[:, :1]).all()  # each run of 4 is one cluster
    # while random batches mix the clusters
    plain = labels[neighbour_batches(nb, 1, np.random.default_rng(0))].reshape(-1, 4)
    assert not (plain == plain[:, :1]).all()


def test_group_one_is_the_plain_shuffle():
    nb = np.full((10, 0), -1, np.int64)
    assert (neighbour_batches(nb, 1, np.random.default_rng(5)) == np.random.default_rng(5).permutation(10)).all()


def test_a_single_row_has_no_neighbours():
    nb = text_neighbours(np.ones((1, 4), np.float32) / 2, 8, 0.99)
    assert nb.shape == (1, 0)
    assert neighbour_batches(nb, 4, np.random.default_rng(0)).tolist() == [0]
