"""The contrast statistics against reference values (SciPy 1.17 and statsmodels 0.15 computed
them for these tables) and against simulation."""

from __future__ import annotations

import random

import pytest

from pipeline.analyse.behaviour import stats


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ((3, 1, 1, 3), 0.48571428571428565),
        ((12, 5, 4, 15), 0.006364071141359916),
        ((0, 10, 5, 5), 0.032507739938080496),
        ((30, 20, 25, 25), 0.421551772461527),
    ],
)
def test_fisher_exact_matches_scipy(table, expected):
    assert stats.fisher_exact(*table) == pytest.approx(expected, rel=1e-9)


def test_wilson_and_newcombe_match_statsmodels():
    assert stats.wilson(7, 20) == pytest.approx((0.18119182410108203, 0.5671457233147638))
    assert stats.wilson(0, 12) == pytest.approx((0.0, 0.24249400665524096), abs=1e-12)
    assert stats.newcombe(15, 20, 8, 22) == pytest.approx((0.08533943239020475, 0.6025564099904106))


def test_cmh_test_matches_statsmodels():
    # statsmodels' tables are [[with & success, with & failure], [without & success, ...]]
    strata = [
        stats.Stratum(3, 4, 1, 4),
        stats.Stratum(2, 4, 0, 4),
        stats.Stratum(4, 4, 2, 4),
        stats.Stratum(1, 4, 0, 4),
    ]
    result = stats.mantel_haenszel(strata)
    assert result.p_value == pytest.approx(0.020583673879965514, rel=1e-9)
    assert result.n_strata == 4
    assert result.diff == pytest.approx((2 + 2 + 2 + 1) / 4 / 4)


def test_mantel_haenszel_leaves_out_one_sided_tasks_and_sees_through_task_difficulty():
    # Easy tasks: the behaviour is common and everyone succeeds; hard ones: rare, all fail.
    # Pooled, it looks strongly helpful; within each task it changes nothing.
    strata = [stats.Stratum(3, 3, 1, 1)] * 10 + [stats.Stratum(0, 1, 0, 3)] * 10
    strata += [stats.Stratum(2, 2, 0, 0)]  # no run without it: says nothing within the task
    result = stats.mantel_haenszel(strata)
    assert result.n_strata == 20
    assert result.diff == pytest.approx(0.0)
    assert result.p_value == pytest.approx(1.0)


def test_sato_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = random.Random(7)
    covered, trials = 0, 400
    for _ in range(trials):
        strata = []
        for _task in range(40):
            base = rng.uniform(0.1, 0.8)
            n1 = rng.randint(1, 7)
            s1 = sum(rng.random() < base + 0.15 for _ in range(n1))
            s0 = sum(rng.random() < base for _ in range(8 - n1))
            strata.append(stats.Stratum(s1, n1, s0, 8 - n1))
        r = stats.mantel_haenszel(strata)
        covered += r.ci_low <= 0.15 <= r.ci_high
    assert 0.9 <= covered / trials <= 0.99


def test_benjamini_hochberg_matches_the_step_up_rule():
    q = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.2, None, 0.001])
    assert q == pytest.approx([0.025, 0.05, 0.05, 0.2, None, 0.005])
    assert stats.benjamini_hochberg([]) == []
