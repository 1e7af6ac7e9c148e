"""Session fixtures for the real-model tier: real servers serving SmolLM2 on loopback.

``llama_server`` (llama.cpp's llama-server, 2 slots of 4096 tokens, --jinja) and
``llama_cpp_python_server`` (llama-cpp-python's server, n_ctx 4096) yield started servers
(see servers.py): ``.base_url`` for the openai client, ``.model`` to send, ``.log_path``.
Each starts once per session, on first use. Without the build, package or model (``make
realmodel`` installs them) the tests that use them skip; under ``T2S_REQUIRE_REAL_MODEL=1``
(CI) they fail instead, so a broken install cannot pass as a green run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from .servers import LlamaCppPythonServer, LlamaServer, RealModelUnavailable


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("T2S_REQUIRE_REAL_MODEL") == "1":
        pytest.fail(f"T2S_REQUIRE_REAL_MODEL=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    try:
        server = LlamaServer(
            ctx_per_slot=4096, slots=2, jinja=True, log_dir=tmp_path_factory.mktemp("llama-server")
        )
    except RealModelUnavailable as exc:
        _unavailable(str(exc))
    with server:
        yield server


@pytest.fixture(scope="session")
def llama_cpp_python_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LlamaCppPythonServer]:
    try:
        server = LlamaCppPythonServer(
            n_ctx=4096, log_dir=tmp_path_factory.mktemp("llama-cpp-python")
        )
    except RealModelUnavailable as exc:
        _unavailable(str(exc))
    with server:
        yield server
