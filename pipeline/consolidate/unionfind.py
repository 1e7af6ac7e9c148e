"""Connected components over pair arrays, in numpy (no scipy): a vectorised union-find.

`components(n, a, b)` labels nodes 0..n-1 so that the nodes of each pair (a[i], b[i]) share a
label; each label is the smallest node of its component, so labels do not depend on pair order.
Each round hooks every edge's larger root under its smaller one and then compresses paths by
pointer jumping; rounds repeat until no edge joins two roots (a few rounds in practice).
"""

from __future__ import annotations

import numpy as np


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError("pair arrays differ in length")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
        raise ValueError(f"pair ends must lie in 0..{n - 1}")
    while a.size:
        ra, rb = parent[a], parent[b]
        live = ra != rb
        if not live.any():
            break
        lo, hi = np.minimum(ra[live], rb[live]), np.maximum(ra[live], rb[live])
        np.minimum.at(parent, hi, lo)
        while True:  # pointer jumping until every node points at a root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        a, b = a[live], b[live]
    return parent
