"""Bootstrap intervals: they cover the estimate, keep the pairing and repeat for a seed."""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import stats


def test_accuracy_interval():
    x = np.array([1] * 30 + [0] * 30)
    ci = stats.accuracy(x, seed=1)
    assert ci.estimate == 0.5 and ci.low < 0.5 < ci.high
    assert 0.3 < ci.low and ci.high < 0.7
    assert ci == stats.accuracy(x, seed=1)
    assert stats.accuracy(np.ones(10)) == stats.Interval(1.0, 1.0, 1.0)
    assert stats.accuracy(np.array([])) == stats.Interval(0.0, 0.0, 0.0)


def test_paired_difference_keeps_the_pairing():
    rng = np.random.default_rng(0)
    base = (rng.random(200) < 0.5).astype(float)
    better = base.copy()
    better[np.flatnonzero(base == 0)[:20]] = 1  # 20 tasks fixed, none broken
    p = stats.paired(better, base, seed=0)
    assert p.n == 200 and p.wins == 20 and p.losses == 0
    assert abs(p.delta.estimate - 0.1) < 1e-12
    # pairing: every resample improves, so the interval excludes 0 and P(not better) is 0
    assert p.delta.low > 0 and p.p_not_better == 0.0
    same = stats.paired(base, base)
    assert same.delta == stats.Interval(0.0, 0.0, 0.0) and same.p_not_better == 1.0


def test_paired_worse_arm():
    a = np.array([1, 0, 0, 0, 1, 0, 0, 0] * 5, dtype=float)
    b = np.array([1, 1, 1, 0, 1, 1, 0, 0] * 5, dtype=float)
    p = stats.paired(a, b)
    assert p.delta.estimate < 0 and p.delta.high < 0 and p.p_not_better == 1.0
    assert p.losses == 15 and p.wins == 0
