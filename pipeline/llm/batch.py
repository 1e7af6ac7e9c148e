"""Batch mode: the misses of an `amap` answered through a batch job instead of one call each.

Both ways read and write the batch-API JSONL format, one request per line::

    {"custom_id": KEY, "method": "POST", "url": "/v1/chat/completions", "body": {...}}

and results, one per line, ``{"custom_id", "response": {"status_code", "body"}, "error"}``.

- Server (``batch = true``): the file is uploaded (``/v1/files``, purpose ``batch``), submitted
  (``/v1/batches``), polled every ``batch_poll_s`` seconds; the output and error files are
  downloaded and folded into ``llm_calls`` with ``batch_id`` set. A submitted job is recorded in
  ``LAKE/_batches/<batch_id>.json`` until folded, so a run killed while waiting picks the same
  job up when rerun instead of paying for it twice.
- Files on disk (``batch = true`` and ``batch_dir``), for vLLM's offline ``run_batch`` or any job
  run by hand: the misses are written to ``batch_dir/requests-<id>.jsonl``; every
  ``batch_dir/*.results.jsonl`` found is folded in. A first run writes the file and ends those
  requests as "awaiting batch results"; the rerun after the job has run answers them.

Output that fails its schema gets one repair: at once through the server, or as a
``KEY:repair`` line in the next request file. Failed lines end as error rows (rerun to retry).
Callers of `LLM.amap` see the same results either way.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from pipeline.ids import digest
from pipeline.llm.endpoint import plain
from pipeline.llm.types import (
    ChatResult,
    MalformedResponse,
    Prepared,
    load_completion,
    repair_body,
)

ENDPOINT = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}
Outcome = tuple[str | None, str | None]  # (completion JSON, error)


def request_line(custom_id: str, body: dict) -> str:
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": plain(body)}
    return json.dumps(line)


def write_requests(path: str | Path, items: list[tuple[str, dict]]) -> Path:
    """Write batch-API request lines (custom_id, body) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(request_line(cid, body) + "\n" for cid, body in items), "utf-8")
    tmp.replace(path)
    return path


def outcome(line: dict) -> Outcome:
    """The completion JSON of one result line, or why there is none."""
    response, error = line.get("response"), line.get("error")
    if response and response.get("status_code") == 200:
        text = json.dumps(response.get("body"))
        try:
            load_completion(text)
        except MalformedResponse as exc:
            return None, str(exc)
        return text, None
    if response:
        body = response.get("body") or {}
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else body
        return None, f"HTTP {response.get('status_code')}: {message}"
    error = error or {}
    return None, f"batch line failed: {error.get('code')}: {error.get('message')}"


def parse_results(text: str, source: str) -> tuple[dict[str, Outcome], list[str]]:
    """Outcomes by custom_id, and a problem (naming the source and line) per unreadable line."""
    found: dict[str, Outcome] = {}
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            found[str(line["custom_id"])] = outcome(line)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            problems.append(
                f"{source} line {number}: not a batch result ({exc.__class__.__name__})"
            )
    return found, problems


def read_results(path: str | Path) -> dict[str, Outcome]:
    """Outcomes by custom_id from a results file (unreadable lines are skipped)."""
    return parse_results(Path(path).read_text("utf-8"), str(path))[0]


async def amap_batch(llm, prepared: list[Prepared], cached: dict) -> list[ChatResult]:
    """Like `LLM.amap`, with the misses answered by batch jobs."""
    t0 = time.perf_counter()
    results: list[ChatResult | None] = [None] * len(prepared)
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prepared):
        results[i] = llm._from_cache(p, cached.get(p.key), t0)
        if results[i] is None:
            groups.setdefault(p.key, []).append(i)
    first = [prepared[idx[0]] for idx in groups.values()]
    if first and llm.settings.batch_dir is not None:
        answered = await _from_files(llm, first, Path(llm.settings.batch_dir), t0)
    elif first:
        answered = await _from_server(llm, first, t0)
    else:
        answered = {}
    for key, idx in groups.items():
        results[idx[0]] = answered[key]
        for i in idx[1:]:
            results[i] = llm._shared(prepared[i], answered[key], t0)
    return results  # type: ignore[return-value]


async def _fold(
    llm, p: Prepared, got: Outcome, batch_id: str, t0: float, repair: Outcome | None | bool
):
    """Log the outcome of one request; `repair`: True to repair now, or the repair line's outcome."""
    text, error = got
    if error is not None:
        result = ChatResult(key=p.key, ok=False, error=error, attempts=1)
        return llm.finish(p, result, text, t0, batch_id)
    result, invalid = llm.result_from(p, text)
    result.attempts = 1
    if invalid is not None:
        if repair is True:
            result, text = await llm._repair(p, result, invalid)
            result.attempts += 1
        else:
            spent = (result.tokens_in, result.tokens_out)
            rtext, rerror = repair
            if rerror is not None:
                reason = f"invalid output ({invalid}); the repair failed: {rerror}"
                result = ChatResult(key=p.key, ok=False, error=reason, content=result.content)
            else:
                result, again = llm.result_from(p, rtext)
                text = rtext
                if again is not None:
                    result.ok, result.error = False, f"invalid output after one repair: {again}"
            result.tokens_in += spent[0]
            result.tokens_out += spent[1]
            result.attempts = 2
    return llm.finish(p, result, text, t0, batch_id)


# -- files on disk ------------------------------------------------------------------------------
async def _from_files(llm, todo: list[Prepared], folder: Path, t0: float) -> dict[str, ChatResult]:
    lines: dict[str, Outcome] = {}
    sources: dict[str, str] = {}
    for path in sorted(folder.glob("*.results.jsonl")):
        found, problems = parse_results(path.read_text("utf-8"), str(path))
        for problem in problems:
            llm.console.warn(problem)
        lines.update(found)
        sources.update(dict.fromkeys(found, path.name.removesuffix(".results.jsonl")))
    answered: dict[str, ChatResult] = {}
    to_write: list[tuple[str, dict]] = []
    for p in todo:
        got = lines.get(p.key)
        if got is None:
            to_write.append((p.key, p.body))
            continue
        if got[0] is not None:
            result, invalid = llm.result_from(p, got[0])
            if invalid is not None and f"{p.key}:repair" not in lines:
                to_write.append((f"{p.key}:repair", repair_body(p, result.content, invalid)))
                continue
        repair = lines.get(f"{p.key}:repair", (None, "no repair line"))
        answered[p.key] = await _fold(llm, p, got, sources[p.key], t0, repair)
    if to_write:
        name = f"requests-{digest(sorted(cid for cid, _ in to_write), length=12)}"
        path = write_requests(folder / f"{name}.jsonl", to_write)
        results = folder / f"{name}.results.jsonl"
        llm.console.warn(
            f"wrote {len(to_write)} batch requests to {path}; run them, e.g. "
            f"`python -m vllm.entrypoints.openai.run_batch -i {path} -o {results} "
            f"--model {llm.settings.model}`, then run this command again"
        )
        waiting = {cid.removesuffix(":repair") for cid, _ in to_write}
        for p in todo:
            if p.key in waiting:
                reason = f"awaiting batch results: {results}"
                answered[p.key] = ChatResult(key=p.key, ok=False, error=reason)
                llm.usage.errors += 1
    return answered


# -- the server's batch API ---------------------------------------------------------------------
async def _from_server(llm, todo: list[Prepared], t0: float) -> dict[str, ChatResult]:
    answered: dict[str, ChatResult] = {}
    by_key = {p.key: p for p in todo}
    for record in _records(llm):
        mine = [by_key[k] for k in record["keys"] if k in by_key and k not in answered]
        if mine:
            llm.console.info(f"batch {record['batch_id']}: resuming ({len(mine)} requests)")
            await _collect(llm, record["batch_id"], mine, answered, t0)
    rest = [p for p in todo if p.key not in answered]
    size = llm.settings.batch_max_requests
    for chunk in (rest[i : i + size] for i in range(0, len(rest), size)):
        if llm.over_budget():
            answered.update((p.key, llm._fail(p, "budget exhausted", t0)) for p in chunk)
            continue
        batch_id, error = await _submit(llm, chunk)
        if error is not None:
            for p in chunk:
                answered[p.key] = llm.finish(
                    p, ChatResult(key=p.key, ok=False, error=error), None, t0
                )
            continue
        await _collect(llm, batch_id, chunk, answered, t0)
    return answered


def _record_dir(llm) -> str | None:
    return llm.lake.path("_batches") if llm.lake is not None else None


def _records(llm) -> list[dict]:
    folder = _record_dir(llm)
    if folder is None:
        return []
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(folder, allow_not_found=True)
    records = []
    for info in sorted(llm.lake.fs.get_file_info(selector), key=lambda i: i.path):
        if info.path.endswith(".json"):
            with llm.lake.fs.open_input_stream(info.path) as fh:
                records.append(json.loads(fh.read().decode()))
    return records


def _forget(llm, batch_id: str) -> None:
    folder = _record_dir(llm)
    if folder is not None:
        try:
            llm.lake.fs.delete_file(f"{folder}/{batch_id}.json")
        except (FileNotFoundError, OSError):
            pass


async def _submit(llm, chunk: list[Prepared]) -> tuple[str | None, str | None]:
    client = llm.transport.bind()
    data = "".join(request_line(p.key, p.body) + "\n" for p in chunk).encode()

    async def upload():
        f = await client.files.create(file=("requests.jsonl", data), purpose="batch")
        return f.id, None

    sent = await llm.transport.run(upload)
    if sent.error is not None:
        return None, f"batch upload failed: {sent.error}"
    file_id = sent.data

    async def create():
        b = await client.batches.create(
            input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h"
        )
        return b.id, None

    sent = await llm.transport.run(create)
    if sent.error is not None:
        return None, f"batch submission failed: {sent.error}"
    batch_id = sent.data
    folder = _record_dir(llm)
    if folder is not None:
        llm.lake.fs.create_dir(folder, recursive=True)
        record = {"batch_id": batch_id, "input_file_id": file_id, "keys": [p.key for p in chunk]}
        llm.lake._put_bytes(f"{folder}/{batch_id}.json", json.dumps(record).encode())
    llm.console.info(f"batch {batch_id}: {len(chunk)} requests submitted")
    return batch_id, None


async def _collect(llm, batch_id: str, chunk: list[Prepared], answered: dict, t0: float) -> None:
    """Wait for a job, download its output and error files, fold every request of `chunk`."""
    client = llm.transport.bind()

    async def status():
        return await client.batches.retrieve(batch_id), None

    while True:
        sent = await llm.transport.run(status)
        if sent.error is not None:
            reason = f"batch {batch_id}: status unavailable ({sent.error}); rerun to collect it"
            for p in chunk:
                answered[p.key] = ChatResult(key=p.key, ok=False, error=reason)
                llm.usage.errors += 1
            return
        batch = sent.data
        if batch.status in TERMINAL:
            break
        llm.console.detail(f"batch {batch_id}: {batch.status}")
        await asyncio.sleep(llm.settings.batch_poll_s)
    outcomes: dict[str, Outcome] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue

        async def download(file_id=file_id):
            return (await client.files.content(file_id)).text, None

        sent = await llm.transport.run(download)
        if sent.error is None:
            found, problems = parse_results(sent.data, f"batch {batch_id} file {file_id}")
            outcomes.update(found)
            for problem in problems:
                llm.console.warn(problem)
    missing = f"batch {batch_id} ended {batch.status} without a result for this request"
    for p in chunk:
        got = outcomes.get(p.key, (None, missing))
        answered[p.key] = await _fold(llm, p, got, batch_id, t0, True)
    _forget(llm, batch_id)
