"""The statistics of a contrast between runs with and without a behaviour; pure functions.

- `wilson`: the Wilson score interval of a proportion;
- `newcombe`: the interval of a difference of two independent proportions from their Wilson
  intervals (Newcombe's hybrid score method), which keeps its coverage at small counts;
- `fisher_exact`: the two-sided p-value of a 2x2 table (tables as or less probable than the one
  seen), exact at any count;
- `mantel_haenszel`: the difference within strata (tasks) pooled with Mantel-Haenszel weights,
  its interval from Sato's variance (consistent with many small strata, as tasks with a few runs
  each are) and the continuity-corrected Cochran-Mantel-Haenszel test;
- `benjamini_hochberg`: q-values that hold the false-discovery rate over many features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Interval of s1/n1 - s2/n2."""
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson(s1, n1, z)
    l2, u2 = wilson(s2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt(
        (u1 - p1) ** 2 + (p2 - l2) ** 2
    )


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p of the table [[a, b], [c, d]] (rows: with / without; columns: success /
    failure), conditioning on its margins."""
    row1, col1, n = a + b, a + c, a + b + c + d
    lo, hi = max(0, col1 - (n - row1)), min(row1, col1)
    log_total = _log_choose(n, col1)

    def log_p(x: int) -> float:
        return _log_choose(row1, x) + _log_choose(n - row1, col1 - x) - log_total

    seen = log_p(a)
    # Relative tolerance as in R and SciPy: ties in probability count as extreme.
    cut = seen + math.log1p(1e-7)
    p = sum(math.exp(lp) for x in range(lo, hi + 1) if (lp := log_p(x)) <= cut)
    return min(1.0, p)


@dataclass(frozen=True)
class Stratum:
    """One task's runs: with the feature (n1, of which s1 successful) and without (n0, s0)."""

    s1: int
    n1: int
    s0: int
    n0: int


@dataclass(frozen=True)
class Stratified:
    n_strata: int
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def mantel_haenszel(strata: Sequence[Stratum], z: float = Z95) -> Stratified:
    """Pooled difference of success rates within strata; strata without both groups are left
    out (they say nothing about the difference within a task)."""
    used = [s for s in strata if s.n1 > 0 and s.n0 > 0]
    if not used:
        return Stratified(0, None, None, None, None)
    w = num = p_term = q_term = 0.0
    dev = var = 0.0
    for s in used:
        n = s.n1 + s.n0
        w += s.n1 * s.n0 / n
        num += (s.s1 * s.n0 - s.s0 * s.n1) / n
        # Sato (1989): Var = (RD * P + Q) / W^2
        p_term += (s.n1**2 * s.s0 - s.n0**2 * s.s1 + s.n1 * s.n0 * (s.n0 - s.n1) / 2) / n**2
        q_term += (s.s1 * (s.n0 - s.s0) + s.s0 * (s.n1 - s.s1)) / (2 * n)
        m1 = s.s1 + s.s0
        dev += s.s1 - s.n1 * m1 / n
        if n > 1:
            var += s.n1 * s.n0 * m1 * (n - m1) / (n * n * (n - 1))
    diff = num / w
    variance = max(0.0, (diff * p_term + q_term) / (w * w))
    half = z * math.sqrt(variance)
    if var > 0:
        chi2 = max(0.0, abs(dev) - 0.5) ** 2 / var
        p = math.erfc(math.sqrt(chi2 / 2))
    else:
        p = 1.0  # every task all success or all failure: no evidence either way
    return Stratified(len(used), diff, max(-1.0, diff - half), min(1.0, diff + half), p)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """q-values in the order given; None stays None and does not count as a test."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    out: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        p, i = tested[rank - 1]
        running = min(running, p * m / rank)
        out[i] = running
    return out
