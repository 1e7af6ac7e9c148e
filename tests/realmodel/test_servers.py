"""Smoke test of the real-model harness: each real server answers one chat completion."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.realmodel


@pytest.mark.parametrize("fixture", ["llama_server", "llama_cpp_python_server"])
def test_server_answers_a_chat_completion(fixture: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(fixture)
    client = openai.OpenAI(base_url=server.base_url, api_key="none", timeout=120)
    answer = client.chat.completions.create(
        model=server.model,
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
        max_tokens=16,
        temperature=0,
    )
    assert answer.choices[0].message.content.strip(), answer
