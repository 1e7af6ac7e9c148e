import numpy as np
import pytest

from pipeline.consolidate.unionfind import components


def brute(n, a, b):
    label = list(range(n))
    changed = True
    while changed:
        changed = False
        for x, y in zip(a, b, strict=True):
            m = min(label[x], label[y])
            if label[x] != m or label[y] != m:
                label[x] = label[y] = m
                changed = True
    return np.array(label)


@pytest.mark.parametrize("seed", range(5))
def test_matches_a_brute_force_labelling(seed):
    rng = np.random.default_rng(seed)
    n = 300
    a, b = rng.integers(0, n, 250), rng.integers(0, n, 250)
    got = components(n, a, b)
    assert (got == brute(n, a.tolist(), b.tolist())).all()
    # labels are the smallest node of each component, whatever the pair order
    perm = rng.permutation(len(a))
    assert (components(n, b[perm], a[perm]) == got).all()


def test_chains_and_no_pairs():
    assert components(5, np.array([3, 2, 1]), np.array([4, 3, 2])).tolist() == [0, 1, 1, 1, 1]
    assert components(3, np.array([], dtype=int), np.array([], dtype=int)).tolist() == [0, 1, 2]


def test_bad_pairs_raise():
    with pytest.raises(ValueError, match="lie in"):
        components(3, np.array([0]), np.array([3]))
    with pytest.raises(ValueError, match="differ in length"):
        components(3, np.array([0, 1]), np.array([1]))
