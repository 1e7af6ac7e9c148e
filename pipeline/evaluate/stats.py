"""Paired bootstrap: accuracy intervals and intervals of paired accuracy differences.

Tasks are the unit of resampling: each of ``resamples`` draws picks n task indices with
replacement, the same draw for every arm, so an interval of a difference keeps the pairing.
Percentile intervals; deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Paired:
    n: int
    accuracy: float
    reference_accuracy: float
    delta: Interval
    p_not_better: float  # share of resamples where the arm does not beat the reference
    wins: int
    losses: int


def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(estimate: float, samples: np.ndarray, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


def accuracy(
    correct: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Mean of a 0/1 vector with its bootstrap interval (0, 0, 0 for no tasks)."""
    x = np.asarray(correct, dtype=float)
    if x.size == 0:
        return Interval(0.0, 0.0, 0.0)
    means = x[_draws(x.size, resamples, seed)].mean(axis=1)
    return _interval(x.mean(), means, level)


def paired(
    arm: np.ndarray,
    reference: np.ndarray,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Paired:
    """Difference of accuracies of two arms on the same tasks (arrays aligned by task)."""
    a, b = np.asarray(arm, dtype=float), np.asarray(reference, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        return Paired(0, 0.0, 0.0, Interval(0.0, 0.0, 0.0), 1.0, 0, 0)
    diff = a - b
    deltas = diff[_draws(a.size, resamples, seed)].mean(axis=1)
    return Paired(
        n=int(a.size),
        accuracy=float(a.mean()),
        reference_accuracy=float(b.mean()),
        delta=_interval(diff.mean(), deltas, level),
        p_not_better=float((deltas <= 0).mean()),
        wins=int(((a == 1) & (b == 0)).sum()),
        losses=int(((a == 0) & (b == 1)).sum()),
    )
