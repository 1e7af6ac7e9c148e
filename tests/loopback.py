"""A loopback OpenAI-compatible server for tests and benchmarks: the real client, no network.

It answers on 127.0.0.1 at a random port with the real OpenAI response shapes (ids, ``usage``,
``choices[0].message`` with ``tool_calls``), so the official ``openai`` client parses it like any
server. Endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings``, ``GET /v1/models``,
``POST /v1/files`` (multipart), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``.

Use it through the ``loopback`` fixture (a fresh server per test), or directly::

    with Loopback(latency_s=0.0) as server:
        settings = server.settings(model="m", concurrency=8)   # a ModelSettings pointed at it
        ...

Answers (what a chat request gets), in this order:

1. a forced fault (``fail``) or a random one (``fault_rate``);
2. the next scripted answer (``script(*answers)``, first in first out);
3. ``responder(request_json)``, if set and it returns something other than None;
4. the default: a ``response_format`` json_schema request gets a minimal valid instance of its
   schema; a request whose ``tool_choice`` forces a function gets a call to it with minimal
   arguments; anything else gets ``"loopback reply to: <last user message>"``.

An answer is one of:

- ``str``: the assistant content;
- a pydantic model instance, a dict without the keys below, or a list: JSON content;
- ``{"content": ..., "tool_calls": [{"name", "arguments": dict | str, "id"?}], "finish_reason",
  "usage": {"prompt_tokens", "completion_tokens"}, "refusal"}`` (any subset);
- ``{"fault": KIND, "retry_after": seconds}`` with KIND one of ``FAULTS``:
  ``429`` (with ``retry-after``), ``500``, ``timeout`` (sleeps ``hang_s``, past the client's
  timeout, then answers), ``truncated`` (a 200 whose JSON body is cut in half), ``invalid_json``
  (a 200 whose body is not JSON), ``bad_schema`` (a valid completion whose content breaks the
  requested schema), ``disconnect`` (closes the connection without a response);
- ``{"status": 400, "body": {...}}``: any HTTP error.

A request with ``"stream": true`` gets its answer as server-sent events (the message, the finish
reason, and the usage when ``stream_options.include_usage`` asks for it). ``props``, when set, is
served at ``GET /props``, as llama.cpp's server describes its context and slots.

Faults: ``fault_rate`` (0..1) draws a kind from ``fault_kinds`` for that share of chat and
embedding requests (seeded by ``seed``); ``fail(kind, times=1, match=None)`` forces a fault on the
next ``times`` requests for which ``match(request_json)`` is true (every request if None).
``latency_s`` delays every answer. Batches run every line through the same chat logic (faults
included, which become failed lines) once ``batch_polls`` status polls have seen "in_progress".

What it received: ``received`` (every request: method, path, JSON body or None), ``chat_requests``
and ``embedding_requests`` (the JSON bodies), ``faults`` (a Counter of injected faults by kind).
Embeddings are the lexical embedder's vectors (``embedding_dim`` dimensions), so similar texts get
similar vectors. Run ``python tests/loopback.py --latency 1`` to serve from a shell.
"""

from __future__ import annotations

import argparse
import collections
import email.parser
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("429", "500", "timeout", "truncated", "invalid_json", "bad_schema", "disconnect")
_SPECIAL = {"content", "tool_calls", "finish_reason", "usage", "refusal", "fault", "status"}


def minimal_instance(schema: dict, root: dict | None = None) -> Any:
    """The smallest value that validates against a JSON schema (the subset pydantic emits)."""
    root = root or schema
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return minimal_instance(node, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            options = [s for s in schema[combo] if s.get("type") != "null"] or schema[combo]
            return minimal_instance(options[0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: minimal_instance(props[k], root) for k in schema.get("required", props)}
    if kind == "array":
        item = schema.get("items", {"type": "string"})
        return [minimal_instance(item, root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        # a string the stages' own checks take (a title is one sentence of 8+ characters)
        text = "x" * schema["minLength"] if schema.get("minLength") else "A minimal answer."
        return text[: schema.get("maxLength", len(text))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + (1 if "exclusiveMinimum" in schema else 0)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class Loopback:
    """The server; see the module docstring for its API."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = ("429", "500", "timeout", "truncated", "invalid_json"),
        retry_after: float = 0.0,
        hang_s: float = 5.0,
        seed: int = 0,
        embedding_dim: int = 64,
        batch_polls: int = 1,
        responder: Callable[[dict], Any] | None = None,
        port: int = 0,
    ):
        self.latency_s = latency_s
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.embedding_dim = embedding_dim
        self.batch_polls = batch_polls
        self.responder = responder
        self.props: dict | None = None  # served at GET /props (as llama.cpp does) when set
        self.received: list[dict] = []
        self.faults: collections.Counter[str] = collections.Counter()
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self._script: collections.deque = collections.deque()
        self._forced: list[list] = []  # [kind, remaining, match]
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._embedder = None
        self._server = ThreadingHTTPServer(
            ("127.0.0.1", port), _handler(self), bind_and_activate=False
        )
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # clients hang up on faults
        self._server.request_queue_size = 1024
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Loopback:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve_forever that never ran
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Loopback:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def settings(self, **overrides):
        """ModelSettings for this server: fast retries, short timeout, no settings file."""
        from pipeline.settings import ModelSettings

        values = dict(
            model="loopback-model",
            base_url=self.url,
            api_key="loopback-key",
            timeout_s=5.0,
            retry_base_s=0.01,
            retry_max_s=0.05,
            batch_poll_s=0.02,
        )
        return ModelSettings(**(values | overrides))

    # -- scripting ---------------------------------------------------------------------------
    def script(self, *answers: Any) -> None:
        with self._lock:
            self._script.extend(answers)

    def fail(self, kind: str, times: int = 1, match: Callable[[dict], bool] | None = None) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {FAULTS}")
        with self._lock:
            self._forced.append([kind, times, match])

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._forced.clear()
            self.received.clear()
            self.faults.clear()

    @property
    def chat_requests(self) -> list[dict]:
        return [r["body"] for r in self.received if r["path"].endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[dict]:
        return [r["body"] for r in self.received if r["path"].endswith("/embeddings")]

    # -- answering ---------------------------------------------------------------------------
    def _fault_for(self, body: dict) -> str | None:
        with self._lock:
            for entry in self._forced:
                kind, remaining, match = entry
                if remaining > 0 and (match is None or match(body)):
                    entry[1] -= 1
                    return kind
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.fault_kinds)
        return None

    def answer_chat(self, body: dict, *, in_batch: bool = False) -> tuple[int, Any, dict]:
        """(status, JSON body or raw bytes, headers) for one chat request; status -1: hang up."""
        answer: Any = None
        fault = self._fault_for(body)
        if fault is None:
            answer = self._scripted(body)
            if isinstance(answer, dict) and "fault" in answer:
                fault = answer["fault"]
        if fault is not None:
            if in_batch and fault in ("timeout", "disconnect"):
                return -1, None, {}
            return self._fault(fault, body, answer if isinstance(answer, dict) else {})
        if isinstance(answer, dict) and "status" in answer:
            return answer["status"], answer.get("body", {"error": {"message": "scripted"}}), {}
        return self._answer(body, self._completion(body, answer), in_batch)

    def _answer(self, body: dict, completion: dict, in_batch: bool) -> tuple[int, Any, dict]:
        """A completion as JSON, or as server-sent events when the request streams."""
        if not body.get("stream") or in_batch:
            return 200, completion, {}
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return 200, sse(completion, usage), {"Content-Type": "text/event-stream"}

    def _scripted(self, body: dict) -> Any:
        with self._lock:
            answer = self._script.popleft() if self._script else None
        if answer is None and self.responder is not None:
            answer = self.responder(body)
        return answer

    def _fault(self, kind: str, body: dict, spec: dict) -> tuple[int, Any, dict]:
        with self._lock:
            self.faults[kind] += 1
        if kind == "429":
            wait = spec.get("retry_after", self.retry_after)
            error = {
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                }
            }
            return 429, error, {"retry-after": str(wait)}
        if kind == "500":
            return (
                500,
                {"error": {"message": "The server had an error", "type": "server_error"}},
                {},
            )
        if kind == "timeout":
            time.sleep(self.hang_s)
            return self._answer(body, self._completion(body, self._scripted(body)), False)
        if kind == "truncated":
            status, payload, headers = self._answer(body, self._completion(body, None), False)
            text = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            return 200, text[: len(text) // 2], headers
        if kind == "invalid_json":
            return 200, b"<html>upstream error</html>", {}
        if kind == "bad_schema":
            return 200, self._completion(body, {"content": '{"unexpected": true'}), {}
        if kind == "disconnect":
            return -1, None, {}
        raise ValueError(f"unknown fault {kind!r}")

    def _default(self, body: dict) -> Any:
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return minimal_instance(fmt["json_schema"]["schema"])
        choice = body.get("tool_choice")
        tools = body.get("tools") or []
        if tools and (choice == "required" or isinstance(choice, dict)):
            name = choice["function"]["name"] if isinstance(choice, dict) else None
            tool = next((t for t in tools if t["function"]["name"] == name), tools[0])
            params = tool["function"].get("parameters") or {"type": "object"}
            return {
                "tool_calls": [
                    {"name": tool["function"]["name"], "arguments": minimal_instance(params)}
                ]
            }
        if fmt.get("type") == "json_object":
            return {}
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last = users[-1]["content"] if users else ""
        if isinstance(last, list):
            last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
        return f"loopback reply to: {str(last)[:200]}"

    def _completion(self, body: dict, answer: Any) -> dict:
        if answer is None:
            answer = self._default(body)
        if hasattr(answer, "model_dump_json"):
            answer = answer.model_dump(mode="json")
        if not (isinstance(answer, dict) and set(answer) & _SPECIAL):
            answer = {"content": answer}
        content = answer.get("content")
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "refusal": answer.get("refusal"),
        }
        calls = []
        for call in answer.get("tool_calls") or []:
            args = call.get("arguments", {})
            calls.append(
                {
                    "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
        if calls:
            message["tool_calls"] = calls
        prompt = json.dumps(body.get("messages", []))
        usage = answer.get("usage") or {}
        tokens_in = usage.get("prompt_tokens", _tokens(prompt))
        tokens_out = usage.get("completion_tokens", _tokens((content or "") + json.dumps(calls)))
        finish = answer.get("finish_reason") or ("tool_calls" if calls else "stop")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "loopback"),
            "system_fingerprint": "fp_loopback",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }

    def answer_embeddings(self, body: dict) -> tuple[int, Any, dict]:
        fault = self._fault_for(body)
        if fault is not None:
            return self._fault(fault if fault != "bad_schema" else "500", body, {})
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if self._embedder is None:
            from pipeline.llm.embed import LexicalEmbedder

            self._embedder = LexicalEmbedder(dim=self.embedding_dim)
        vectors = self._embedder.embed([str(t) for t in inputs])
        n = sum(_tokens(str(t)) for t in inputs)
        return (
            200,
            {
                "object": "list",
                "data": [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": [round(float(x), 6) for x in v],
                    }
                    for i, v in enumerate(vectors)
                ],
                "model": body.get("model", "loopback-embed"),
                "usage": {"prompt_tokens": n, "total_tokens": n},
            },
            {},
        )

    # -- files and batches -------------------------------------------------------------------
    def add_file(self, data: bytes, filename: str, purpose: str) -> dict:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        with self._lock:
            self.files[file_id] = {"meta": meta, "data": data}
        return meta

    def create_batch(self, body: dict) -> tuple[int, Any, dict]:
        source = self.files.get(body.get("input_file_id", ""))
        if source is None:
            return 404, {"error": {"message": f"no file {body.get('input_file_id')}"}}, {}
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body.get("endpoint", "/v1/chat/completions"),
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
            "_polls": 0,
        }
        with self._lock:
            self.batches[batch_id] = batch
        return 200, _public(batch), {}

    def poll_batch(self, batch_id: str) -> tuple[int, Any, dict]:
        batch = self.batches.get(batch_id)
        if batch is None:
            return 404, {"error": {"message": f"no batch {batch_id}"}}, {}
        batch["_polls"] += 1
        if batch["status"] in ("validating", "in_progress"):
            if batch["_polls"] <= self.batch_polls:
                batch["status"] = "in_progress"
            else:
                self._run_batch(batch)
        return 200, _public(batch), {}

    def _run_batch(self, batch: dict) -> None:
        lines = self.files[batch["input_file_id"]]["data"].decode().splitlines()
        out, err = [], []
        for line in filter(None, lines):
            item = json.loads(line)
            status, payload, _ = self.answer_chat(item["body"], in_batch=True)
            row = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": item["custom_id"]}
            if status == 200 and isinstance(payload, dict):
                out.append(
                    row
                    | {
                        "response": {"status_code": 200, "request_id": row["id"], "body": payload},
                        "error": None,
                    }
                )
            elif status > 0 and isinstance(payload, dict):
                out.append(
                    row
                    | {
                        "response": {
                            "status_code": status,
                            "request_id": row["id"],
                            "body": payload,
                        },
                        "error": None,
                    }
                )
            else:
                err.append(
                    row
                    | {
                        "response": None,
                        "error": {"code": "server_error", "message": f"line failed ({status})"},
                    }
                )
        batch["output_file_id"] = self.add_file(
            "\n".join(map(json.dumps, out)).encode() + b"\n", "output.jsonl", "batch_output"
        )["id"]
        if err:
            batch["error_file_id"] = self.add_file(
                "\n".join(map(json.dumps, err)).encode() + b"\n", "errors.jsonl", "batch_output"
            )["id"]
        batch["request_counts"] = {
            "total": len(out) + len(err),
            "completed": len(out),
            "failed": len(err),
        }
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())


def sse(completion: dict, usage: bool) -> bytes:
    """A completion as the chunks of a stream: the message, the finish reason, the usage."""
    head = {k: completion[k] for k in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"
    choice = completion["choices"][0]
    message = choice["message"]
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
    chunks = [
        {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
    ]
    if usage:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def _public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _parse_multipart(content_type: str, data: bytes) -> dict[str, tuple[str | None, bytes]]:
    message = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + data
    )
    fields = {}
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_payload(decode=True))
    return fields


def _handler(server: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
            if status < 0:
                self.close_connection = True
                self.connection.close()
                return
            headers = dict(headers or {})
            if isinstance(payload, bytes):
                data, kind = payload, "application/octet-stream"
                if payload[:1] in (b"{", b"["):
                    kind = "application/json"
            else:
                data, kind = json.dumps(payload).encode(), "application/json"
            kind = headers.pop("Content-Type", kind)
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _record(self, body: Any) -> None:
            with server._lock:
                server.received.append({"method": self.command, "path": self.path, "body": body})

        def do_GET(self) -> None:
            self._record(None)
            time.sleep(server.latency_s) if server.latency_s else None
            path = self.path.split("?")[0]
            if path == "/props" and server.props is not None:  # llama.cpp's server metadata
                return self._send(200, server.props)
            if path.endswith("/models"):
                return self._send(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": "loopback-model",
                                "object": "model",
                                "created": 0,
                                "owned_by": "loopback",
                            }
                        ],
                    },
                )
            if m := re.fullmatch(r".*/files/([^/]+)/content", path):
                entry = server.files.get(m[1])
                return (
                    self._send(200, entry["data"])
                    if entry
                    else self._send(404, {"error": {"message": "no such file"}})
                )
            if m := re.fullmatch(r".*/files/([^/]+)", path):
                entry = server.files.get(m[1])
                return (
                    self._send(200, entry["meta"])
                    if entry
                    else self._send(404, {"error": {"message": "no such file"}})
                )
            if m := re.fullmatch(r".*/batches/([^/]+)", path):
                return self._send(*server.poll_batch(m[1]))
            self._send(404, {"error": {"message": f"no route {path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?")[0]
            if path.endswith("/files"):
                self._record(None)
                fields = _parse_multipart(self.headers["Content-Type"], raw)
                filename, data = fields.get("file", (None, b""))
                purpose = (fields.get("purpose", (None, b"batch"))[1] or b"").decode()
                return self._send(200, server.add_file(data, filename or "upload.jsonl", purpose))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._record(None)
                return self._send(400, {"error": {"message": "request body is not JSON"}})
            self._record(body)
            if server.latency_s:
                time.sleep(server.latency_s)
            if path.endswith("/chat/completions"):
                return self._send(*server.answer_chat(body))
            if path.endswith("/embeddings"):
                return self._send(*server.answer_embeddings(body))
            if path.endswith("/batches"):
                return self._send(*server.create_batch(body))
            if m := re.fullmatch(r".*/batches/([^/]+)/cancel", path):
                batch = server.batches.get(m[1])
                if batch is None:
                    return self._send(404, {"error": {"message": "no such batch"}})
                batch["status"] = "cancelled"
                return self._send(200, _public(batch))
            self._send(404, {"error": {"message": f"no route {path}"}})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the loopback OpenAI-compatible server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args()
    server = Loopback(port=args.port, latency_s=args.latency, fault_rate=args.fault_rate)
    print(server.url, flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
