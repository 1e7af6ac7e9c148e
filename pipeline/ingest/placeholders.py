"""Typed placeholders for content parts that hold no text: images, audio, files, documents.

A step's content is text; a part of a message that is not (an image given to the model, an
audio clip, an attached file) is kept in the text as ``[kind: name, media type, size]`` so the
reader of a run sees what was there. The shapes read: OpenAI chat and Responses parts
(``image_url``, ``input_image``, ``input_audio``, ``file``, ``input_file``), Anthropic blocks
(``image`` / ``document`` with a ``source``), the GenAI tracing conventions' ``blob`` / ``uri`` /
``file`` parts (with ``modality``) and Gemini's ``inline_data`` / ``file_data``.
"""

from __future__ import annotations

import re

# Content part types that carry media, and what the placeholder calls them.
MEDIA_KINDS = {
    "image": "image", "image_url": "image", "input_image": "image",
    "audio": "audio", "input_audio": "audio", "output_audio": "audio",
    "video": "video", "video_url": "video",
    "file": "file", "input_file": "file", "file_data": "file", "inline_data": "file",
    "document": "document", "blob": "blob", "uri": "uri",
}  # fmt: skip
_DATA_URL = re.compile(r"^data:([^;,]*)(?:;[^,]*)?,", re.IGNORECASE)
_MAX_REFERENCE = 200  # characters of a URL or file id shown in a placeholder


def placeholder(part: dict, kind: str) -> str:
    """``[kind: name, media type, size]`` for a part that holds no text; the size is that of
    its inline data, a URL or file id stands in where the data is elsewhere."""
    fields = dict(part)
    for value in part.values():  # OpenAI nests the payload under the type, Anthropic in source
        if isinstance(value, dict):
            fields |= value
    data = _first_str(fields, "data", "file_data", "b64_json")
    if data is None and part.get("type") == "blob":
        data = _first_str(fields, "content")
    url = _first_str(fields, "url", "image_url", "file_url", "uri", "file_uri")
    mime = _first_str(fields, "mime_type", "media_type", "mimeType", "format")
    for candidate in (data, url):
        m = _DATA_URL.match(candidate or "")
        if m:
            mime = mime or m.group(1) or None
            data, url = candidate[m.end() :], None
    kind = part.get("modality") if isinstance(part.get("modality"), str) else kind
    details = [_first_str(fields, "filename", "file_name"), mime]
    if data is not None:  # base64, but for Anthropic's plain-text document source
        details.append(_size(data, is_base64=fields.get("type") != "text"))
    else:
        reference = url or _first_str(fields, "file_id", "id")
        if reference:
            details.append(reference[:_MAX_REFERENCE])
    details = [d for d in details if d]
    return f"[{kind}: {', '.join(details)}]" if details else f"[{kind}]"


def _first_str(fields: dict, *keys: str) -> str | None:
    for key in keys:
        if isinstance(fields.get(key), str) and fields[key]:
            return fields[key]
    return None


def _size(data: str, is_base64: bool) -> str:
    """The size of inline data: decoded from its base64 length without decoding it."""
    n = len(data) * 3 // 4 - data[-2:].count("=") if is_base64 else len(data.encode("utf-8"))
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{round(n / 1024)} KB"
    return f"{n / (1024 * 1024):.1f} MB"
