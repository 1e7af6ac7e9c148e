"""The package layout: `pipeline` and its subpackages, with the repository's SQL files (`sql/`)
and the WikiTableQuestions sample (`data/wikitablequestions/`) mapped into it, and the prompts, as
package data, so that a built wheel works from any folder. A checkout reads them where they are
(`pipeline/resources.py`). Everything else about the project is in pyproject.toml."""

from setuptools import find_packages, setup

MAPPED = {
    "pipeline.queries": "sql",
    "pipeline.evaluate.wikitablequestions.sample": "data/wikitablequestions",
}

setup(
    packages=[*find_packages(include=["pipeline*"]), *MAPPED],
    package_dir=MAPPED,
    package_data={
        "pipeline.queries": ["*.sql", "examples/*.sql"],
        "pipeline.analyse": ["prompts/*.md"],
        "pipeline.consolidate": ["prompts/*.md"],
        "pipeline.evaluate.wikitablequestions.sample": ["*", "*/*", "*/*/*", "*/*/*/*"],
    },
)
