"""Secret redaction: scrub credentials and personal addresses from text before a model sees it.

`redact(text)` replaces each secret with a marker naming its kind (``[REDACTED:api-key]``), so a
reader still sees that something was there and what it was. It is used by the renderer (every
prompt a model analyst sends goes through it) and on the miner's lesson text (lessons reach
consolidation prompts and skill files).

What counts as a secret: provider API keys (OpenAI/Anthropic ``sk-...``, AWS ``AKIA...``, GitHub,
Slack, Google, Stripe, Hugging Face), bearer and basic authorization headers, JWTs, private key
blocks, credentials inside URLs, values of password/secret/token keys in ``key=value``, ``key:
value`` or JSON form, and email addresses. Patterns are anchored on the shape of real
credentials (prefix plus enough high-entropy characters), so ordinary words such as ``sk-learn``,
"password reset" or "token budget" are left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache

_SECRET_KEYS = (
    r"(?:password|passwd|passphrase|pwd|secret|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|auth[_-]?token|access[_-]?token|"
    r"refresh[_-]?token|session[_-]?token|private[_-]?key|token)"
)

# Order matters: whole blocks and structured forms first, so a key inside them is not
# half-replaced by a narrower pattern.
_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "private-key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.S,
        ),
        "[REDACTED:private-key]",
    ),
    (
        "url-credentials",
        re.compile(r"(?<=://)[^\s:/@'\"]+:[^\s@/'\"]+(?=@)"),
        "[REDACTED:credentials]",
    ),
    (
        "authorization",
        re.compile(r"(?i)\b(bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{16,})"),
        r"\1 [REDACTED:token]",
    ),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        "[REDACTED:jwt]",
    ),
    (
        "json-secret",
        re.compile(
            r"(?i)(\\?[\"']" + _SECRET_KEYS + r"\\?[\"']\s*:\s*\\?[\"'])"
            r"((?:[^\"'\\\n]|\\[^\"'])+)(\\?[\"'])"
        ),
        r"\1[REDACTED:secret]\3",
    ),
    (
        # key="value" / key: 'value' (code, YAML, and how the renderer writes call arguments)
        "quoted-secret",
        re.compile(
            r"(?i)\b((?:[A-Za-z0-9]+[_-])*" + _SECRET_KEYS + r"(?:[_-][A-Za-z0-9]+)*\s*[=:]\s*)"
            r"([\"'])(?!REDACTED|\[REDACTED)((?:(?!\2)[^\\\n]|\\.){4,})\2"
        ),
        r"\1\2[REDACTED:secret]\2",
    ),
    (
        "assigned-secret",
        re.compile(
            r"(?i)\b((?:[A-Za-z0-9]+[_-])*" + _SECRET_KEYS + r"(?:[_-][A-Za-z0-9]+)*"
            r"\s*=\s*)(?![\[\"'{(<]|REDACTED)([^\s,;&\"'<>]{4,})"
        ),
        r"\1[REDACTED:secret]",
    ),
    (
        # "password: x" is also prose ("the secret: tell nobody"), so the value must look like
        # a credential: a digit, a symbol or an inner capital, and six characters or more.
        "colon-secret",
        re.compile(
            r"(?i)\b((?:[A-Za-z0-9]+[_-])*" + _SECRET_KEYS + r"(?:[_-][A-Za-z0-9]+)*\s*:\s*)"
            r"(?![\[\"'{(<]|REDACTED)"
            r"(?=[^\s,;\"'<>]{6,})(?-i:(?=\S*?(?:\d|[^\w\s]|[a-z][A-Z])))([^\s,;\"'<>]+)"
        ),
        r"\1[REDACTED:secret]",
    ),
    (
        "openai-key",
        re.compile(r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"),
        "[REDACTED:api-key]",
    ),
    (
        "aws-key-id",
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
        "[REDACTED:aws-key]",
    ),
    (
        "github-token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
        "[REDACTED:api-key]",
    ),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "[REDACTED:api-key]"),
    ("google-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "[REDACTED:api-key]"),
    ("stripe-key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b"), "[REDACTED:api-key]"),
    ("hf-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), "[REDACTED:api-key]"),
    (
        "email",
        re.compile(
            r"(?<![\w.+-])(?!git@)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
        ),
        "[REDACTED:email]",
    ),
]

# Cheap pre-check (plain substring tests, far faster than one regex alternation): text with none
# of these fragments cannot hold a secret we look for.
_HINTS = (
    "private key",
    "://",
    "bearer",
    "basic",
    "token",
    "eyj",
    "pass",
    "pwd",
    "secret",
    "key",
    "sk-",
    "akia",
    "asia",
    "agpa",
    "aida",
    "aroa",
    "gh",
    "xox",
    "aiza",
    "_live_",
    "_test_",
    "hf_",
    "@",
)


def redact(text: str | None) -> str | None:
    """`text` with every secret replaced by ``[REDACTED:<kind>]``; None stays None."""
    if not text:
        return text
    low = text.lower()
    if not any(h in low for h in _HINTS):
        return text
    return _redact(text)


@lru_cache(maxsize=1 << 16)
def _redact(text: str) -> str:
    # Cached: lesson titles and tool outputs repeat across a pool.
    for _kind, pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def find_secrets(text: str) -> list[str]:
    """The kinds of secret `text` holds (for reports and tests), in pattern order."""
    return [kind for kind, pattern, _ in _PATTERNS if text and pattern.search(text)]
