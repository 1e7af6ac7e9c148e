"""The rendered model prompts on the fixture lake, against golden files.

One summary request, the root merge request and one sequential edit, as sent to the server.
Regenerate after an intended change with `make golden` (T2S_UPDATE_GOLDEN=1).
"""

from __future__ import annotations

import os

import pytest

from pipeline.consolidate.run import consolidate
from tests.conftest import DATA, ROOT
from tests.consolidate import scripted
from tests.consolidate.conftest import write_lake

GOLDEN = ROOT / "tests" / "golden" / "consolidate"
BASE = DATA / "tau-bench-airline" / "base-skill"


def rendered(body: dict) -> str:
    fmt = body["response_format"]["json_schema"]["name"]
    parts = [f"response_format: {fmt}"]
    parts += [f"## {m['role']}\n\n{m['content']}" for m in body["messages"]]
    return "\n\n".join(parts) + "\n"


def test_rendered_prompts(lake, loopback, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    loopback.responder = scripted.responder
    settings = loopback.settings()
    consolidate(lake, base_skill=BASE, out_dir=tmp_path / "p" / "x", settings=settings)
    consolidate(lake, base_skill=BASE, out_dir=tmp_path / "s" / "x", settings=settings,
                mode="sequential", batch_size=4)  # fmt: skip
    bodies = loopback.chat_requests
    summary = next(b for b in bodies if scripted.kind(b) == "summary"
                   and "membership tier" in scripted.user_text(b))  # fmt: skip
    root = next(b for b in bodies if scripted.kind(b) == "merge"
                and len({e["section"] for e in scripted.entries(b)}) > 1)  # fmt: skip
    edit = [b for b in bodies if scripted.kind(b) == "sequential"][2]
    texts = {"prompt_summarise.txt": rendered(summary), "prompt_merge_root.txt": rendered(root),
             "prompt_sequential_batch3.txt": rendered(edit)}  # fmt: skip
    if os.environ.get("T2S_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
        pytest.skip(f"wrote {', '.join(texts)}")
    for name, text in texts.items():
        path = GOLDEN / name
        assert path.exists(), f"no golden file {path}: run `make golden`"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from {path}"
