"""What one (server, model) takes, and the request shape that follows from it.

An `Endpoint` holds the ways a request can be shaped and which of them this server and model take:
structured output (``json_schema``, then ``json_object_schema`` — ``{"type": "json_object",
"schema": ...}`` as llama-cpp-python takes it —, then ``json_object``, then ``text``: the JSON shape
in the instructions and the answer read from the reply's text), tool calls (``native``, or
``text``: one JSON action per turn, see `textual`), streaming (so that time-outs count silence,
not total time), the name of the completion-token limit, and parameters the model refuses. It
also holds what bounds a prompt: the context window per request slot, the slots, and the
characters per token seen in the server's own counts.

`shape` turns a request (its logical body: what the cache key is made of) into the body sent.
`switch` is what happens when the server rejects a request for its shape: the feature the error
names steps down one level, the change is noted with the server's words, and the request is sent
again in the new shape — never as it was. A rejection that names no feature in use (a bad model
name, say) is no shape problem and is not switched. Each step is final for the endpoint, so a
request can be reshaped only a bounded number of times.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.llm import textual

STRUCTURED = ("json_schema", "json_object_schema", "json_object", "text")
TOOLS = ("native", "text")
DROPPABLE = ("seed", "temperature", "frequency_penalty")
# OpenAI's reasoning models take max_completion_tokens and refuse temperature.
REASONING_MODEL = re.compile(r"^(o\d|gpt-5)", re.I)

# Servers that turn a schema into a grammar: bounds on strings and lists make a small model that
# repeats itself close the string and the list, rather than run to max_tokens.
GRAMMAR_SERVERS = ("llama.cpp", "llama-cpp-python", "ollama", "vllm")
MAX_STRING_CHARS = 400
MIN_STRING_CHARS = 40
MAX_LIST_ITEMS = 8
EXPECTED_LIST_ITEMS = 2  # how many items an unbounded list is sized for (the cap is the limit)
ANSWER_SHARE_OF_STRINGS = 0.5  # of the completion limit: the rest is JSON, numbers, whitespace
BOUND_CHARS_PER_TOKEN = 2.5  # at most, for the bounds: repeated text tokenises short

SCHEMA_NOTE = (
    "Reply with only one JSON value, with no prose and no code fence around it, of this shape "
    "(write your own text in place of each <...>; a|b means one of those values):\n{shape}"
)


@dataclass
class Endpoint:
    base_url: str
    model: str
    server: str = "unknown"
    structured: str = "json_schema"
    tools: str = "native"
    stream: bool = True
    stream_usage: bool = True
    token_param: str = "max_tokens"
    dropped: list[str] = field(default_factory=list)
    context_tokens: int | None = None  # per request (llama.cpp: per slot)
    slots: int | None = None  # requests the server runs at once, where it says
    chars_per_token: float | None = None
    notes: list[str] = field(default_factory=list)
    version: int = 0  # bumped at every switch: requests shaped before it are not switched again

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def fresh(cls, base_url: str, model: str, *, structured: str = "auto", tools: str = "auto"):
        ep = cls(base_url=base_url, model=model)
        if REASONING_MODEL.match(model):
            ep.token_param = "max_completion_tokens"
            ep.dropped = ["temperature"]
            ep.notes.append("a reasoning model: max_completion_tokens, no temperature")
        if structured != "auto":
            ep.structured = structured
            ep.notes.append(f"structured output set to {structured}")
        if tools != "auto":
            ep.tools = tools
            ep.notes.append(f"tool protocol set to {tools}")
        return ep

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    @property
    def mode(self) -> str:
        """How requests are shaped now, as llm_calls.mode records it."""
        parts = [self.structured, f"tools:{self.tools}", "stream" if self.stream else "no-stream"]
        return "+".join(parts)

    # -- shaping -----------------------------------------------------------------------------
    def shape(self, body: dict, *, stream: bool | None = None) -> tuple[dict, str]:
        """(the body to send, its mode) for a logical chat-completions body."""
        out = dict(body)
        messages = list(out["messages"])
        fmt = out.pop("response_format", None)
        mode = "plain"
        if fmt is not None:
            mode = self.structured
            schema = (fmt.get("json_schema") or {}).get("schema") or {}
            if self.server in GRAMMAR_SERVERS:
                cpt = min(self.chars_per_token or BOUND_CHARS_PER_TOKEN, BOUND_CHARS_PER_TOKEN)
                schema = bounded(grammar_only(schema, keep=True), out.get("max_tokens"), cpt)
            else:
                schema = grammar_only(schema, keep=False)
            fmt = {**fmt, "json_schema": {**fmt["json_schema"], "schema": schema}}
            if self.structured == "json_schema":
                out["response_format"] = fmt
            elif self.structured == "json_object_schema":  # the schema is the server's grammar
                out["response_format"] = {"type": "json_object", "schema": schema}
            else:  # no grammar of the shape: the instructions carry it
                if self.structured == "json_object":
                    out["response_format"] = {"type": "json_object"}
                messages = _with_note(messages, SCHEMA_NOTE.format(shape=skeleton_text(schema)))
        if out.get("tools"):
            if self.tools == "text":
                tools, choice = out.pop("tools"), out.pop("tool_choice", None)
                messages = textual.to_text(messages, tools, choice)
                mode += "+tools:text"
            else:
                mode += "+tools:native"
        elif any(m.get("role") == "tool" or m.get("tool_calls") for m in messages):
            messages = textual.to_text(messages, [], None)  # a history with tools, none offered
        out["messages"] = messages
        if "max_tokens" in out and self.token_param != "max_tokens":
            out[self.token_param] = out.pop("max_tokens")
        for name in self.dropped:
            out.pop(name, None)
        if self.stream if stream is None else stream:
            out["stream"] = True
            if self.stream_usage:
                out["stream_options"] = {"include_usage": True}
            mode += "+stream"
        return out, mode

    # -- switching on a rejection ------------------------------------------------------------
    def switch(self, sent: dict, message: str, seen_version: int) -> str | None:
        """Step down the feature the rejection of `sent` points at; what changed, or None when
        nothing is left to change. A request shaped before another switch is just reshaped."""
        with self._lock:
            if seen_version != self.version:
                return f"reshaped after an earlier switch ({self.mode})"
            change = self._step(sent, message.lower())
            if change is not None:
                self.version += 1
                self.notes.append(f"{change} (the server said: {message[:200]})")
            return change

    def _step(self, sent: dict, said: str) -> str | None:
        options: list[tuple[tuple[str, ...], str]] = []
        if "stream_options" in sent:
            options.append((("stream_options", "include_usage"), "usage_off"))
        if sent.get("stream"):
            options.append((("stream",), "stream_off"))
        if "response_format" in sent or (
            self.structured != "text" and _has_note(sent.get("messages") or [])
        ):
            options.append((("response_format", "json_schema", "json_object", "schema"), "down"))
        if sent.get("tools"):
            options.append((("tools", "tool_choice", "function"), "tools_text"))
        for name in (self.token_param, *DROPPABLE):
            if name in sent:
                options.append(((name,), name))
        named = [o for o in options if any(word in said for word in o[0])]
        return self._apply(named[0][1]) if named else None

    def _apply(self, action: str) -> str:
        if action == "usage_off":
            self.stream_usage = False
            return "stream_options refused: streaming without usage"
        if action == "stream_off":
            self.stream = False
            return "streaming refused: answers are read whole"
        if action == "down":
            old = self.structured
            self.structured = STRUCTURED[min(STRUCTURED.index(old) + 1, len(STRUCTURED) - 1)]
            return f"structured output {old} refused: now {self.structured}"
        if action == "tools_text":
            self.tools = "text"
            return "native tool calls refused: tools through the text protocol"
        if action == "max_tokens":
            self.token_param = "max_completion_tokens"
            return "max_tokens refused: max_completion_tokens instead"
        if action == "max_completion_tokens":
            self.token_param = "max_tokens"
            return "max_completion_tokens refused: max_tokens instead"
        self.dropped.append(action)
        return f"{action} refused: no longer sent"

    def no_usage(self) -> str | None:
        """A streamed answer came without usage: read answers whole from now on, so that
        tokens are counted (what changed, or None if that was already so)."""
        with self._lock:
            if not self.stream:
                return None
            self.stream = False
            self.version += 1
            change = "streamed answers carry no usage: answers are read whole"
            self.notes.append(change)
            return change

    def learn_ratio(self, prompt_chars: int, prompt_tokens: int) -> None:
        """Keep the smallest characters-per-token seen: prompts are sized with it."""
        if prompt_tokens > 50 and prompt_chars > 0:
            ratio = prompt_chars / prompt_tokens
            if self.chars_per_token is None or ratio < self.chars_per_token:
                self.chars_per_token = round(ratio, 3)


def _with_note(messages: list[dict], note: str) -> list[dict]:
    """The messages with `note` at the end of the system message (a new one if there is none)."""
    messages = copy.copy(messages)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first.get('content') or ''}\n\n{note}".strip()
        messages[0] = first
        return messages
    return [{"role": "system", "content": note}, *messages]


def _has_note(messages: list[dict]) -> bool:
    first = messages[0] if messages else {}
    return first.get("role") == "system" and SCHEMA_NOTE[:40] in (first.get("content") or "")


GRAMMAR_ONLY = "x-grammar"  # in a schema node: keywords for servers that make a grammar of it


def grammar_only(schema: Any, *, keep: bool) -> Any:
    """`schema` with each node's `GRAMMAR_ONLY` keywords (e.g. a title's ``minLength``, which
    strict servers refuse) merged into it where a grammar holds them (`keep`), else dropped."""
    if isinstance(schema, list):
        return [grammar_only(s, keep=keep) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: grammar_only(v, keep=keep) for k, v in schema.items() if k != GRAMMAR_ONLY}
    if keep and isinstance(schema.get(GRAMMAR_ONLY), dict):
        out.update(schema[GRAMMAR_ONLY])
    return out


def with_choices(schema: dict, choices: dict[str, list]) -> dict:
    """A copy of `schema` where each property named in `choices` (a list's items, for a list)
    may take only those values, for grammar servers (`GRAMMAR_ONLY`): e.g. the step numbers of
    the run a lesson cites. Other servers' answers are checked after."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items()}
        for name, values in choices.items():
            prop = (out.get("properties") or {}).get(name)
            if isinstance(prop, dict):
                target = prop["items"] if isinstance(prop.get("items"), dict) else prop
                target[GRAMMAR_ONLY] = {**target.get(GRAMMAR_ONLY, {}), "enum": list(values)}
        return out

    return walk(schema)


def plain(body: dict) -> dict:
    """`body` for a server that makes no grammar of its schema, sent as it is (the batch API)."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if schema is None:
        return body
    js = {**fmt["json_schema"], "schema": grammar_only(schema, keep=False)}
    return {**body, "response_format": {**fmt, "json_schema": js}}


def bounded(schema: dict, max_tokens: int | None, chars_per_token: float) -> dict:
    """`schema` with a bound on every free string and list that has none: lists to
    `MAX_LIST_ITEMS`, strings to their share of what `max_tokens` can hold (the same for each,
    counting a string once per item a list may hold), so that the whole answer fits its limit."""
    strings = _strings(schema, schema, 0)
    cap = MAX_STRING_CHARS
    if max_tokens and strings:
        cap = int(max_tokens * chars_per_token * ANSWER_SHARE_OF_STRINGS / strings)
        cap = max(MIN_STRING_CHARS, min(cap, MAX_STRING_CHARS))
    return _bound(schema, cap)


def _free_string(s: dict) -> bool:
    return s.get("type") == "string" and "enum" not in s and "const" not in s


def _strings(schema: Any, root: dict, depth: int) -> int:
    """How many free strings an answer of `schema` can hold at most."""
    if not isinstance(schema, dict) or depth > 8:
        return 0
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _strings((root.get("$defs") or {}).get(name, {}), root, depth + 1)
    if _free_string(schema):
        return 1
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return max(_strings(o, root, depth + 1) for o in options)
    if schema.get("type") == "array":  # a list without a bound counts as a few items, not all
        items = min(schema.get("maxItems", EXPECTED_LIST_ITEMS), MAX_LIST_ITEMS)
        return items * _strings(schema.get("items") or {}, root, depth + 1)
    props = schema.get("properties") or {}
    return sum(_strings(v, root, depth + 1) for v in props.values())


def _bound(schema: Any, cap: int) -> Any:
    if isinstance(schema, list):
        return [_bound(s, cap) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bound(v, cap) for k, v in schema.items()}
    if _free_string(out) and "maxLength" not in out:
        out["maxLength"] = cap
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = MAX_LIST_ITEMS
    return out


# -- the JSON shape, for instructions ------------------------------------------------------------
def skeleton(schema: dict, root: dict | None = None, depth: int = 0) -> Any:
    """A compact example of the JSON `schema` describes: field -> type and description."""
    root = root if root is not None else schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return skeleton((root.get("$defs") or {}).get(name, {}), root, depth)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            nullable = len(options) < len(schema[key])
            shown = skeleton(options[0], root, depth) if options else None
            return f"{shown} or null" if nullable and isinstance(shown, str) else shown
    if "enum" in schema:
        return "|".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 6:
            return {}
        return {
            k: skeleton(v, root, depth + 1) for k, v in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        return [skeleton(schema.get("items") or {}, root, depth + 1)]
    desc = schema.get("description")
    label = {"integer": "integer", "number": "number", "boolean": "true|false"}.get(kind, "string")
    return f"<{label}: {desc}>" if desc else f"<{label}>"


def skeleton_text(schema: dict) -> str:
    return json.dumps(skeleton(schema), ensure_ascii=False)
