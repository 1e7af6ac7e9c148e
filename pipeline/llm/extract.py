"""Reading a model's answer out of its text: reasoning apart, JSON found, near misses accepted.

Servers without a JSON grammar (or told not to use one) answer in text, and small models drift in
shape: the JSON comes in a Markdown fence or with prose around it, after a ``<think>`` block, as
one bare object where a list was asked, or without a field that may be empty. `split_reasoning`
keeps reasoning apart from the answer (it is stored and counted, never parsed as the answer);
`find_json` finds the first JSON value in a text; `read_structured` validates it against a
pydantic model after `lenient` has fixed the near misses a reader can fix without guessing.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

import pydantic

_THINK = re.compile(r"<think>(.*?)</think>", re.S | re.I)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n(.*?)```", re.S)
_DECODER = json.JSONDecoder()


def split_reasoning(content: str | None) -> tuple[str | None, str | None]:
    """(answer, reasoning) of a reply: ``<think>...</think>`` blocks go to the reasoning; a reply
    that opens a think block and never closes it is all reasoning; text before a lone closing tag
    (a template that opened the block in the prompt) is reasoning too."""
    if not content or "think>" not in content.lower():
        return content, None
    thoughts = [t.strip() for t in _THINK.findall(content)]
    rest = _THINK.sub("", content)
    lower = rest.lower()
    if "</think>" in lower:
        cut = lower.rindex("</think>")
        thoughts.append(rest[:cut].replace("<think>", "").strip())
        rest = rest[cut + len("</think>") :]
    elif "<think>" in lower:
        cut = lower.index("<think>")
        thoughts.append(rest[cut + len("<think>") :].strip())
        rest = rest[:cut]
    reasoning = "\n\n".join(t for t in thoughts if t) or None
    return rest.strip(), reasoning


def find_json(text: str | None) -> Any:
    """The first JSON object or array in `text`: the whole text, a fenced block, or the first
    value that parses from an opening brace or bracket. Raises ValueError when there is none."""
    if text is None or not text.strip():
        raise ValueError("the reply had no content; a JSON object was expected")
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block.strip())
        except ValueError:
            continue
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict | list):
            return value
    raise ValueError(f"no JSON object in the reply: {stripped[:120]!r}")


def _list_field(model: type[pydantic.BaseModel]) -> tuple[str, type | None] | None:
    """(name, item model) of the one required list field of `model`, if it has exactly one."""
    found = []
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is list:
            (item,) = typing.get_args(field.annotation) or (None,)
            found.append((name, item if isinstance(item, type) else None))
    return found[0] if len(found) == 1 else None


def _nullable(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(annotation)
    return annotation is type(None)


def _fill(model: type[pydantic.BaseModel], value: dict) -> dict:
    """`value` with missing fields that may be null set to null (strict schemas mark every field
    required, but a null is what the model means by leaving one out)."""
    out = dict(value)
    for name, field in model.model_fields.items():
        if name not in out and field.is_required() and _nullable(field.annotation):
            out[name] = None
    return out


def lenient(model: type[pydantic.BaseModel], value: Any) -> Any:
    """`value` reshaped where the intent is plain: a bare list, or one bare item, where the
    model wants ``{"<list>": [...]}``; missing nullable fields as null, at the top and in items."""
    listed = _list_field(model)
    if listed is not None:
        name, item = listed
        if isinstance(value, list):
            value = {name: value}
        elif isinstance(value, dict) and name not in value and item is not None:
            others = set(model.model_fields) - {name}
            if set(value) & set(item.model_fields) and not set(value) & others:
                value = {name: [value]}
        if (
            isinstance(value, dict)
            and isinstance(item, type)
            and issubclass(item, pydantic.BaseModel)
        ):
            items = value.get(name)
            if isinstance(items, list):
                value = {
                    **value,
                    name: [_fill(item, v) if isinstance(v, dict) else v for v in items],
                }
    return _fill(model, value) if isinstance(value, dict) else value


def read_structured(model: type[pydantic.BaseModel], content: str | None) -> pydantic.BaseModel:
    """The answer in `content` as an instance of `model`, or a ValueError the model can act on."""
    value = lenient(model, find_json(content))
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise ValueError(problems) from None
