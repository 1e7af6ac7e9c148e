"""`make bench`: run every benchmark module, put each figure beside its reference, write results.

Each ``bench/bench_<name>.py`` defines ``run(size: str, workdir: Path) -> list[Measurement]``.
A measurement is our figure and, where the benchmark has one, a reference measured in the same
run (a plain DuckDB scan, the theoretical limit, an exact computation). Results go to
``bench/results.json`` and ``bench/results.md`` with the date and the machine.

    python -m bench.run [--size small|full] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Measurement:
    bench: str
    name: str
    value: float
    unit: str
    reference_name: str | None = None
    reference_value: float | None = None
    target: str | None = None  # e.g. ">= 0.9 of the limit"
    notes: str = ""
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.reference_value in (None, 0):
            return None
        return self.value / self.reference_value


def machine() -> dict:
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            mem_gb = round(int(fh.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def modules() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def render_markdown(meta: dict, rows: list[Measurement]) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine'].get('cpu', '')}, {meta['machine']['cpus']} cores, "
        f"{meta['machine']['memory_gb']} GB, Python {meta['machine']['python']} (size: {meta['size']}).",
        "",
        "| benchmark | measure | ours | reference | ratio | target | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in rows:
        ref = "" if m.reference_value is None else f"{m.reference_value:,.4g} ({m.reference_name})"
        ratio = "" if m.ratio is None else f"{m.ratio:.2f}"
        lines.append(
            f"| {m.bench} | {m.name} | {m.value:,.4g} {m.unit} | {ref} | {ratio} | {m.target or ''} | {m.notes} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "full"], default="full")
    parser.add_argument("--only", nargs="*", default=None, help=f"benchmarks to run: {modules()}")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--workdir", type=Path, default=HERE / "work")
    args = parser.parse_args(argv)

    names = args.only or modules()
    rows: list[Measurement] = []
    failures = []
    for name in names:
        workdir = args.workdir / name
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            got = module.run(args.size, workdir)
        except Exception:  # a failed benchmark is reported, the others still run
            traceback.print_exc()
            failures.append(name)
            continue
        for m in got:
            print(
                f"   {m.name}: {m.value:,.4g} {m.unit}"
                + (f"  (ref {m.reference_value:,.4g})" if m.reference_value else ""),
                file=sys.stderr,
            )
        rows.extend(got)
        print(f"   done in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "size": args.size,
        "machine": machine(),
        "failed": failures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {**meta, "results": [asdict(m) | {"ratio": m.ratio} for m in rows]}
    # Keep the figures of benchmarks not run this time.
    previous = args.out / "results.json"
    if args.only and previous.exists():
        old = json.loads(previous.read_text())
        kept = [r for r in old.get("results", []) if r["bench"] not in names]
        payload["results"] = kept + payload["results"]
        rows = [
            Measurement(**{k: v for k, v in r.items() if k != "ratio"}) for r in payload["results"]
        ]
    previous.write_text(json.dumps(payload, indent=2))
    (args.out / "results.md").write_text(render_markdown(meta, rows))
    print(f"wrote {previous} and {args.out / 'results.md'}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
