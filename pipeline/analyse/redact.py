"""Secret redaction: scrub credentials and personal addresses from text before it is sent or kept.

`redact(text)` replaces each secret with a marker naming its kind (``[REDACTED:api-key]``), so a
reader still sees that something was there and what it was. It is applied to every text that
reaches a model (the rendered run, the base skill, the agentic analyst's tool results), to every
lesson and analysis row on its way into the lake, and to every line consolidation writes into a
skill. `scrub(text, known=...)` does the same for text a model server sent back (an error body, a
response) and also replaces the values the caller holds, such as the configured API key, whatever
their shape.

What counts as a secret:

- values of secret-bearing keys, by the key's name (``password``, ``DB_PASSWORD``,
  ``PGPASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ``client_secret``, ``api_key``, ``auth``,
  ``AccountKey``, ``*_token`` ...) in JSON, YAML, INI, env and shell (``KEY=value``,
  ``export KEY='value'``), code (``key="value"``), XML (``<password>...</password>``);
- known token shapes: OpenAI/Anthropic ``sk-...``, AWS key ids, GitHub, GitLab, Slack tokens and
  webhooks, Stripe, Google API keys, OAuth tokens and client secrets, Hugging Face, npm, PyPI,
  SendGrid, DigitalOcean, Shopify, JWTs, private key blocks, credentials inside URLs, bearer and
  basic authorization values;
- passwords written in prose ("her password is sunflower1987", 'the password was "velvet
  lagoon"', ``--password S3cret``) when the value looks like one (a digit, a symbol or an inner
  capital) or is quoted;
- email addresses.

Patterns are anchored on the shape of real credentials (prefix plus enough characters), so
ordinary words such as ``sk-learn``, "password reset" or "token budget" are left alone. Each
pattern has a few lowercase fragments of which the text must hold one before the pattern runs:
most texts skip most patterns with a substring test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

# Names of keys whose value is a secret. A name may carry any prefix (DB_PASSWORD, PGPASSWORD,
# _authToken) and suffixes after a separator (password_hash, secret_key, token_v2).
_SECRET_KEYS = (
    r"(?:password|passwd|passphrase|pwd|secret|api[_-]?key|apikey|access[_-]?key|"
    r"account[_-]?key|private[_-]?key|signing[_-]?key|auth|token|credentials?)"
)
_KEY_NAME = r"[A-Za-z0-9_.]*?" + _SECRET_KEYS + r"(?:[_.-][A-Za-z0-9]+)*"
_KEY_HINTS = ("pass", "pwd", "secret", "key", "auth", "token", "credential")
# A bare value that looks like a credential, not a word: a digit, a symbol or an inner capital.
_CREDENTIAL_LIKE = r"(?-i:(?=\S*?(?:\d|[^\w\s]|[a-z][A-Z])))"
# Where a token may start: not inside a word, but right after an escaped newline or tab of JSON
# text (``...\\nsk-...``) too.
_B = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrt]))"
_NOT_REDACTED = r"(?![\[\"'{(<`=:]|\S*REDACTED)"

Pattern = tuple[str, tuple[str, ...], re.Pattern[str], str]


def _rule(kind: str, hints: tuple[str, ...], regex: str, replacement: str, flags=0) -> Pattern:
    return kind, hints, re.compile(regex, flags), replacement


# Order matters: whole blocks and structured forms first, so a key inside them is not
# half-replaced by a narrower pattern.
_PATTERNS: list[Pattern] = [
    _rule(
        "private-key",
        ("private key",),
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        "[REDACTED:private-key]",
        re.S,
    ),
    _rule(
        "slack-webhook",
        ("hooks.slack",),
        r"(?<=hooks\.slack\.com/)(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
        "[REDACTED:webhook]",
    ),
    _rule(
        # user:password@ or :password@ after a scheme
        "url-credentials",
        ("://",),
        r"(?<=://)[^\s:/@'\"]*:[^\s@/'\"]+(?=@)",
        "[REDACTED:credentials]",
    ),
    _rule(
        "authorization",
        ("bearer", "basic", "token"),
        r"(?i)\b(bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{16,})",
        r"\1 [REDACTED:token]",
    ),
    _rule(
        "jwt",
        ("eyj",),
        _B + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        "[REDACTED:jwt]",
    ),
    _rule(
        # "DB_PASSWORD": "value", also escaped inside a JSON string
        "json-secret",
        _KEY_HINTS,
        r"(?i)(\\?[\"']" + _KEY_NAME + r"\\?[\"']\s*:\s*\\?[\"'])"
        r"((?:[^\"'\\\n]|\\[^\"'])+)(\\?[\"'])",
        r"\1[REDACTED:secret]\3",
    ),
    _rule(
        "xml-secret",
        _KEY_HINTS,
        r"(?i)(<(" + _KEY_NAME + r")>)[^<\n]{3,}(</\2>)",
        r"\1[REDACTED:secret]\3",
    ),
    _rule(
        # key="value" / key: 'value' (code, YAML, and how the renderer writes call arguments)
        "quoted-secret",
        _KEY_HINTS,
        r"(?i)\b(" + _KEY_NAME + r"\s*[=:]\s*)"
        r"([\"'])(?!REDACTED|\[REDACTED)((?:(?!\2)[^\\\n]|\\.){4,})\2",
        r"\1\2[REDACTED:secret]\2",
    ),
    _rule(
        # KEY=value (env, shell, INI, query strings)
        "assigned-secret",
        _KEY_HINTS,
        r"(?i)\b(" + _KEY_NAME + r"\s*=\s*)" + _NOT_REDACTED + r"([^\s,;&\"'<>]{4,})",
        r"\1[REDACTED:secret]",
    ),
    _rule(
        # YAML / INI `key: value` alone on its line: a value in config syntax, whatever it looks like
        "yaml-secret",
        _KEY_HINTS,
        r"(?im)^([ \t]*(?:-[ \t]+)?"
        + _KEY_NAME
        + r"[ \t]*:[ \t]*)"
        + _NOT_REDACTED
        + r"([^\s#|>&*!%@]\S{3,})[ \t]*$",
        r"\1[REDACTED:secret]",
    ),
    _rule(
        # "password: x" inside a line is also prose ("the secret: tell nobody"), so the value must
        # look like a credential and be six characters or more, or be one token of twelve or more.
        "colon-secret",
        _KEY_HINTS,
        r"(?i)\b("
        + _KEY_NAME
        + r"\s*:\s*)"
        + _NOT_REDACTED
        + r"(?=[^\s,;\"'<>]{6,})(?:"
        + _CREDENTIAL_LIKE
        + r"|(?=[^\s,;\"'<>]{12,}))"
        + r"([^\s,;\"'<>]+)",
        r"\1[REDACTED:secret]",
    ),
    _rule(
        # passwords in prose or on a command line: 'password is x', 'passphrase "x"', '--password x'
        "prose-password",
        ("pass", "pwd"),
        r"(?i)\b((?:pass(?:word|phrase|code)|passwd|pwd)(?:\s+(?:for|of)\s+[\w@.-]+)?"
        r"(?:\s+(?:is|was|were|are|to|becomes|became|reads)\b)?(?:[ \t]*[:=][ \t]*|[ \t]+))"
        r"(?:(\\?[\"'`])(?!\[?REDACTED)([^\"'`\n\\]{3,80})\2"
        r"|"
        + _NOT_REDACTED
        + r"(?=[^\s\"'`]{4,})(?-i:(?=[^\s\"'`]*?(?:\d|[^\w\s.,;:!?)]|[a-z][A-Z])))"
        r"([^\s\"'`]+?))(?=[.,;:!?)]*(?:\s|$))",
        lambda m: (
            m.group(1)
            + (f"{m.group(2)}[REDACTED:secret]{m.group(2)}" if m.group(2) else "[REDACTED:secret]")
        ),
    ),
    _rule(
        "openai-key",
        ("sk-",),
        _B + r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        "[REDACTED:api-key]",
    ),
    _rule(  # a key a server echoed in part: "sk-proj-abc1****wxyz"
        "masked-key",
        ("sk-",),
        _B + r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{0,16}\*{3,}[A-Za-z0-9_-]{0,16}",
        "[REDACTED:api-key]",
    ),
    _rule(
        "aws-key-id",
        ("akia", "asia", "agpa", "aida", "aroa"),
        _B + r"(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
        "[REDACTED:aws-key]",
    ),
    _rule(
        "github-token",
        ("gh", "github_pat_"),
        _B + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b",
        "[REDACTED:api-key]",
    ),
    _rule(
        "gitlab-token",
        ("gl",),
        _B + r"gl(?:pat|dt|rt|ptt|ft|imt|oas|cbt|soat|ffct|agent)-[A-Za-z0-9_-]{20,}",
        "[REDACTED:api-key]",
    ),
    _rule(
        "slack-token",
        ("xox", "xapp-"),
        _B + r"x(?:ox[abposre]|app)-[A-Za-z0-9-]{10,}",
        "[REDACTED:api-key]",
    ),  # fmt: skip
    _rule(
        "google-key",
        ("aiza", "ya29.", "gocspx-"),
        _B + r"(?:AIza[0-9A-Za-z_-]{35}|ya29\.[0-9A-Za-z_-]{20,}|GOCSPX-[A-Za-z0-9_-]{10,})",
        "[REDACTED:api-key]",
    ),
    _rule(
        "stripe-key",
        ("_live_", "_test_", "whsec_"),
        _B + r"(?:[rs]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})\b",
        "[REDACTED:api-key]",
    ),
    _rule(
        "service-token",
        ("hf_", "npm_", "pypi-", "sg.", "dop_v1_", "shp", "dapi"),
        _B + r"(?:hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|pypi-AgE[A-Za-z0-9_-]{30,}"
        r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|dop_v1_[a-f0-9]{64}"
        r"|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|dapi[a-f0-9]{32})\b",
        "[REDACTED:api-key]",
    ),
    _rule(
        "email",
        ("@",),
        r"(?<![\w.+-])(?!git@)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        "[REDACTED:email]",
    ),
]

# Cheap pre-check: text holding none of the patterns' fragments holds no secret we look for.
_HINTS = tuple(sorted({h for _, hints, _, _ in _PATTERNS for h in hints}))


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
    low = text.lower()
    for _kind, hints, pattern, replacement in _PATTERNS:
        if any(h in low for h in hints):
            text = pattern.sub(replacement, text)
    return text


def scrub(text: str | None, known: Iterable[str | None] = ()) -> str | None:
    """`text` from a model server (an error body, a response) made safe to store and print: the
    `known` secret values (the API key in use, ...) replaced wherever they appear, whatever their
    shape, then every secret `redact` finds. None stays None."""
    if not text:
        return text
    for value in known:
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, "[REDACTED:api-key]")
    return redact(text)


def find_secrets(text: str) -> list[str]:
    """The kinds of secret `text` holds (for reports and tests), in pattern order."""
    return [kind for kind, _, pattern, _ in _PATTERNS if text and pattern.search(text)]
