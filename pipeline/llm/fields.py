"""Field types shared by the structured answers the stages ask models for.

Length limits are checked by validators, not declared in the JSON schema: strict structured
output on some servers refuses minLength/maxLength. Where a server makes a grammar of the schema
the lower limits are declared for it too (`at_least`), so a small model cannot stop short. A reply that fails one costs a repair call
(the model layer re-asks with the validation error), not the run.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from pipeline.llm.endpoint import GRAMMAR_ONLY


def _title(value: str) -> str:
    if not 8 <= len(value.strip()) <= 300:
        raise ValueError("the title must be one sentence of 8 to 300 characters")
    return value.strip()


def at_least(chars: int) -> dict:
    """Schema keywords for a string of at least `chars` characters, for the servers whose
    grammar can hold it (see `pipeline.llm.endpoint.grammar_only`)."""
    return {GRAMMAR_ONLY: {"minLength": chars}}


# A lesson's or a statement's title: one sentence of 8 to 300 characters, stripped.
Title = Annotated[str, AfterValidator(_title), Field(json_schema_extra=at_least(8))]
