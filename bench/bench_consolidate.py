"""Consolidation at scale: time and peak memory, LSH recall, parallel vs sequential.

- scale: synthetic lessons (`pipeline.consolidate.synth`) consolidated into the demo base skill,
  each size in its own subprocess (so its RSS high-water mark is its own), beside a plain DuckDB
  pass over the same lessons (read + group by title) as the time reference and the in-memory size
  of the lessons as the memory reference. Sizes: full 100k and 1M lessons; small 10k and 50k.
- recall: the LSH band join (random hyperplanes, the default 32 bands x 14 bits, on centred vectors) against the exact
  pairs of a numpy brute force over a sample of distinct titles (full 20k, small 5k) at the
  default semantic threshold; pair recall of the candidates, and the share of true pairs that
  end up in one cluster after verification and union-find. Reference: the brute force's time.
- modes: parallel and sequential consolidation of the same lessons (full 50k, small 10k): wall
  time, merge steps and edits (offline: no calls, no tokens).

    python -m bench.run --only consolidate [--size small]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.run import Measurement

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "data" / "tau-bench-airline" / "base-skill"
SIZES = {"small": [10_000, 50_000], "full": [100_000, 1_000_000]}
SAMPLE = {"small": 5_000, "full": 20_000}
MODES_N = {"small": 10_000, "full": 50_000}


def _load() -> str:
    """The machine's 1-minute load average: timings on a shared 2-core machine depend on it."""
    return f"load {os.getloadavg()[0]:.1f}"


def _child(args: list[str]) -> dict:
    before = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_consolidate", *args],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load"] = f"load {before:.1f}-{os.getloadavg()[0]:.1f}"
    return result


def _rss_mb() -> float:
    """This process's RSS high-water mark. /proc's VmHWM is the process's own; ru_maxrss would
    also count the parent's RSS at the fork that started it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_synth(n: int, lake_dir: str) -> dict:
    from pipeline.consolidate.synth import write_synthetic
    from pipeline.lake import Lake

    started = time.perf_counter()
    write_synthetic(Lake(lake_dir), n)
    return {"seconds": time.perf_counter() - started}


def child_reference(lake_dir: str) -> dict:
    from pipeline import sql
    from pipeline.lake import Lake

    lake = Lake(lake_dir)
    started = time.perf_counter()
    con = sql.connect(lake)
    con.execute("set enable_progress_bar = false")
    n = con.sql("select count(*) from (select lower(title), count(*) from lessons group by 1)")
    n = n.fetchall()[0][0]
    seconds = time.perf_counter() - started
    nbytes = lake.read("lessons").estimated_size("mb")
    return {"seconds": seconds, "titles": n, "lessons_mb": nbytes, "rss_mb": _rss_mb()}


def child_consolidate(lake_dir: str, out_dir: str, mode: str) -> dict:
    from pipeline.consolidate.run import consolidate
    from pipeline.lake import Lake

    started = time.perf_counter()
    s = consolidate(Lake(lake_dir), base_skill=BASE, out_dir=out_dir, mode=mode, batch_size=50)
    return {
        "seconds": time.perf_counter() - started, "rss_mb": _rss_mb(), "clusters": s.n_clusters,
        "kept": s.n_kept, "nodes": s.n_nodes, "ops": s.n_ops, "conflicts": s.n_conflicts,
        "skill_lines": s.n_skill_lines, "stages": s.stage_seconds, "lint_ok": s.lint_ok,
        "calls": s.n_calls, "tokens": s.tokens_in + s.tokens_out,
    }  # fmt: skip


def recall(sample: int) -> list[Measurement]:
    import polars as pl

    from pipeline import sql
    from pipeline.consolidate.lsh import band_keys, candidate_pairs, pair_cosines
    from pipeline.consolidate.settings import Thresholds
    from pipeline.consolidate.synth import synthetic_lessons
    from pipeline.consolidate.unionfind import components
    from pipeline.llm.embed import get_embedder

    t = Thresholds()
    _, lessons = synthetic_lessons(sample * 4, seed=7)
    titles = lessons["title"].unique().sort().sample(sample, seed=7).sort().to_list()
    v = get_embedder(t.embedder).embed(titles)
    n = len(titles)

    started = time.perf_counter()
    true_a, true_b = [], []
    for start in range(0, n, 2000):  # brute force in row blocks, upper triangle only
        block = v[start : start + 2000] @ v.T
        r, c = np.nonzero(block >= t.semantic_threshold)
        keep = c > r + start
        true_a.append(r[keep] + start)
        true_b.append(c[keep])
    ta, tb = np.concatenate(true_a), np.concatenate(true_b)
    brute_s = time.perf_counter() - started

    started = time.perf_counter()
    docs = pl.DataFrame(
        {"rid": np.arange(n), "block": "all", "assigns": [[]] * n, "assign_names": [[]] * n},
        schema={"rid": pl.Int64, "block": pl.String, "assigns": pl.List(pl.String),
                "assign_names": pl.List(pl.String)},
    )  # fmt: skip
    con = sql.connect()
    con.execute("set enable_progress_bar = false")
    keys = band_keys(v, t.lsh_bands, t.lsh_rows, t.seed)
    ca, cb = candidate_pairs(con, docs, keys, max_bucket=10**9, pivots=1)
    cos = pair_cosines(v, ca, cb)
    lsh_s = time.perf_counter() - started
    true = set(zip(ta.tolist(), tb.tolist(), strict=True))
    found = set(zip(ca.tolist(), cb.tolist(), strict=True))
    pair_recall = len(true & found) / max(len(true), 1)

    capped_a, capped_b = candidate_pairs(con, docs, keys, max_bucket=t.max_bucket, pivots=t.bucket_pivots)  # fmt: skip
    ok = pair_cosines(v, capped_a, capped_b) >= t.semantic_threshold
    label = components(n, capped_a[ok], capped_b[ok])
    cluster_recall = float((label[ta] == label[tb]).mean()) if ta.size else 1.0
    note = f"{n:,} titles, {len(true):,} true pairs at cosine >= {t.semantic_threshold}; {_load()}"
    return [
        Measurement("consolidate", f"LSH candidate pair recall ({n // 1000}k sample)", pair_recall,
                    "fraction", "exact numpy pairs", 1.0, ">= 0.9", note,
                    {"candidates": int(ca.size), "verified": int((cos >= t.semantic_threshold).sum())}),
        Measurement("consolidate", f"true pairs clustered together ({n // 1000}k sample)",
                    cluster_recall, "fraction", "exact numpy pairs", 1.0, ">= 0.9",
                    f"capped buckets (max {t.max_bucket}, {t.bucket_pivots} pivots) + union-find"),
        Measurement("consolidate", f"LSH join + verify time ({n // 1000}k sample)", lsh_s, "s",
                    "numpy brute force", brute_s, "", note),
    ]  # fmt: skip


def run(size: str, workdir: Path) -> list[Measurement]:
    rows: list[Measurement] = []
    for n in SIZES[size]:
        lake = workdir / f"lake-{n}"
        _child(["synth", str(n), str(lake)])
        ref = _child(["reference", str(lake)])
        got = _child(
            [
                "consolidate",
                str(lake),
                str(workdir / f"out-{n}" / "airline-agent-policy"),
                "parallel",
            ]
        )
        label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M"
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in got["stages"].items())
        rows.append(Measurement("consolidate", f"consolidate {label} lessons", got["seconds"], "s",
                                "DuckDB scan + group by title", ref["seconds"], "minutes, not hours",
                                f"{got['clusters']:,} clusters, {got['kept']:,} kept; {stages}; {got['load']}", got))  # fmt: skip
        rows.append(Measurement("consolidate", f"peak RSS {label} lessons", got["rss_mb"], "MB",
                                "lessons in memory (polars)", ref["lessons_mb"], "< 24 GB", ""))  # fmt: skip
    rows += recall(SAMPLE[size])
    n = MODES_N[size]
    lake = workdir / f"lake-modes-{n}"
    _child(["synth", str(n), str(lake)])
    par = _child(
        ["consolidate", str(lake), str(workdir / "out-par" / "airline-agent-policy"), "parallel"]
    )
    seq = _child(
        ["consolidate", str(lake), str(workdir / "out-seq" / "airline-agent-policy"), "sequential"]
    )
    label = f"{n // 1000}k"
    note = (f"parallel: {par['nodes']:,} merge nodes, {par['ops']:,} ops, {par['kept']:,} statements "
            f"kept; sequential (batch 50): {seq['nodes']:,} batch edits, {seq['ops']:,} ops, "
            f"{seq['kept']:,} kept; offline: 0 calls, 0 tokens; {par['load']} / {seq['load']}")  # fmt: skip
    rows.append(Measurement("consolidate", f"parallel wall time ({label} lessons)", par["seconds"],
                            "s", "sequential, batch 50", seq["seconds"], "", note,
                            {"parallel": par, "sequential": seq}))  # fmt: skip
    rows.append(Measurement("consolidate", f"parallel edits ({label} lessons)", par["ops"], "ops",
                            "sequential edits", seq["ops"], "", "ops written to the skill"))  # fmt: skip
    return rows


def main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "synth":
        result = child_synth(int(args[0]), args[1])
    elif kind == "reference":
        result = child_reference(args[0])
    elif kind == "consolidate":
        result = child_consolidate(*args)
    else:
        raise SystemExit(f"unknown child {kind}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
