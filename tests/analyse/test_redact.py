"""Secrets are replaced by a marker naming their kind; ordinary text is left exactly as it was."""

from __future__ import annotations

import pytest

from pipeline.analyse.redact import find_secrets, redact, scrub
from tests.secret_corpus import PLANTED

SECRETS = [
    (
        "export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz123456",
        "sk-proj-abc",
        "[REDACTED:secret]",
    ),
    ("the key sk-abcdefghijklmnopqrstuvwxyz0123 is live", "sk-abcdef", "[REDACTED:api-key]"),
    ("anthropic sk-ant-api03-abcdefghijklmnopqrstuv", "sk-ant-api03", "[REDACTED:api-key]"),
    ("id AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws-key]"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI",
        "[REDACTED:secret]",
    ),
    (
        "Authorization: Bearer abcdefghijklmnop0123456789.xyz",
        "abcdefghijklmnop0123",
        "Bearer [REDACTED:token]",
    ),
    (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3",
        "[REDACTED:",
    ),
    ('{"user": "bob", "password": "hunter2!x"}', "hunter2", '"password": "[REDACTED:secret]"'),
    ('{\\"password\\": \\"hunter2\\"}', "hunter2", "[REDACTED:secret]"),
    ("mysql -u root --password=Sup3rS3cret db", "Sup3rS3cret", "--password=[REDACTED:secret]"),
    ("db_password: p4ss-w0rd!", "p4ss-w0rd", "[REDACTED:secret]"),
    # how the renderer writes call arguments, and code or YAML
    ('login(user="bob", password="hunter2hunter2")', "hunter2", 'password="[REDACTED:secret]"'),
    ("api_key = 'abcd1234efgh5678'", "abcd1234", "api_key = '[REDACTED:secret]'"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\nnext line",
        "MIIEow",
        "[REDACTED:private-key]\nnext line",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA (truncated",
        "b3BlbnNz",
        "[REDACTED:private-key]",
    ),
    ("write to mia.li3818@example.com today", "mia.li3818", "[REDACTED:email]"),
    (
        "postgres://admin:pa55w0rd@db.example.com:5432/app",
        "pa55w0rd",
        "postgres://[REDACTED:credentials]@db",
    ),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789AB pushed", "ghp_abc", "[REDACTED:api-key]"),
    ("slack xoxb-1234567890-abcdefghij", "xoxb-123", "[REDACTED:api-key]"),
    ("key AIzaSyA-abcdefghijklmnopqrstuvwxyz12345 set", "AIzaSy", "[REDACTED:api-key]"),
    ("login with hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefgh", "[REDACTED:api-key]"),
]


@pytest.mark.parametrize("text,secret,marker", SECRETS)
def test_secret_is_replaced(text, secret, marker):
    out = redact(text)
    assert secret not in out
    assert marker in out
    assert find_secrets(text)


ORDINARY = [
    "We use sk-learn and scikit-learn for the baseline.",
    "The password reset flow sends a link; the token budget is 8000 tokens.",
    "key: value pairs are fine; token: 5; secret: tell nobody",
    "Error: payment method certificate_7504069 not found",
    "gift_card_7504069 and credit_card_4421486 pay for HAT136 on 2024-05-20",
    "git clone git@github.com:org/repo.git && cd repo",
    "Use the api_key parameter (see docs). password: [REDACTED]",
    "Basic economy flights cannot be modified. Bearer bonds are a finance topic.",
    "version 1.2@beta, @mention, a@b",
    "def login(password): return check(password)",
    "",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_none_and_idempotence():
    assert redact(None) is None
    once = redact(SECRETS[0][0] + " and " + SECRETS[7][0])
    assert redact(once) == once


@pytest.mark.parametrize("planted", PLANTED, ids=[p.shape for p in PLANTED])
def test_every_planted_shape_is_redacted(planted):
    out = redact(planted.text)
    assert planted.value not in out
    assert "[REDACTED:" in out
    assert redact(out) == out


PROSE = [
    "The password is required.",
    "password-protected PDF files open read-only",
    "Reset the password to continue; the password must be 8 characters long",
    "max_tokens: 4096 and author: Jane Doe",
    "tokenizer = bert-base and primary_key = user_id",
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_about_passwords_and_keys_is_left_alone(text):
    assert redact(text) == text


def test_scrub_replaces_the_known_key_whatever_its_shape():
    body = 'Error code: 401 - {"error": {"message": "Incorrect API key provided: loopback-key-1."}}'
    assert "loopback-key-1" not in scrub(body, known=["loopback-key-1", None, ""])
    echoed = (
        "Incorrect API key provided: sk-Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7; Bearer abcdefghijklmnop0123"
    )
    assert scrub(echoed) == (
        "Incorrect API key provided: [REDACTED:api-key]; Bearer [REDACTED:token]"
    )
    assert scrub(None) is None
