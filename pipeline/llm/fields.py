"""Field types shared by the structured answers the stages ask models for.

Length limits are checked by validators, not declared in the JSON schema: strict structured
output on some servers refuses minLength/maxLength. A reply that fails one costs a repair call
(the model layer re-asks with the validation error), not the run.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _title(value: str) -> str:
    if not 8 <= len(value.strip()) <= 300:
        raise ValueError("the title must be one sentence of 8 to 300 characters")
    return value.strip()


# A lesson's or a statement's title: one sentence of 8 to 300 characters, stripped.
Title = Annotated[str, AfterValidator(_title)]
