"""What successful runs do differently, measured without a model.

`actions.py` splits every tool call into the programs it ran and their families (the `actions`
table); `sql/behaviour_run_features.sql` turns them into behaviour features per run;
`contrasts.py` compares the success rates of runs with and without each feature (the
`contrasts` table) with the tests of `stats.py`; `words.py` names the features. Analyse derives
both tables before its map (`derive`); the offline miner turns the findings into lessons.
"""

from __future__ import annotations

import duckdb

from pipeline.analyse.behaviour.actions import update_actions
from pipeline.analyse.behaviour.contrasts import (
    Behaviour,
    ContrastSettings,
    measure,
    update_contrasts,
)
from pipeline.lake import Lake


def derive(
    lake: Lake, con: duckdb.DuckDBPyConnection, settings: ContrastSettings | None = None
) -> Behaviour:
    """Bring `actions` up to date, measure the contrasts, write them; what the miner reads."""
    update_actions(lake, con)
    behaviour = measure(con, settings)
    update_contrasts(lake, con, behaviour)
    return behaviour


__all__ = ["Behaviour", "ContrastSettings", "derive", "measure"]
