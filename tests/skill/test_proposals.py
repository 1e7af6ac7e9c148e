"""The skill's life after the first distill, through the command line, on the tau-bench demo in
three batches: v1 from the first; the second proposed against v1 (--since v1 --propose),
reviewed (one statement rejected, the rest accepted) into v2; the third proposed against v2,
where the rejected statement is held back. Then the gate: an evaluation on the loopback server
that refuses a proposal stops its review."""

from __future__ import annotations

import html
import json
import re
import shutil

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline import sql
from pipeline.cli import main
from pipeline.lake import Lake
from pipeline.skill.diff import diff_statements, normalise
from pipeline.skill.versions import recorded, resolve, version_statements
from tests.conftest import DATA
from tests.evaluate.agents import answer

AIRLINE = DATA / "tau-bench-airline"
BASE = AIRLINE / "base-skill"


def cli(*args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    return result


def distill(root, batch, *extra):
    return cli(
        "distill", batch, "--source", "tau-bench-airline", "--lake", root / "lake",
        "--base-skill", BASE, "--out", root / "out" / "airline-agent-policy", "--no-report",
        *extra, env={"T2S_ACTOR": "reviewer@ci"},
    )  # fmt: skip


def mark(review_md, verdicts: dict[str, tuple[str, str]]) -> None:
    """Fill in the verdict and reason lines of the entries named."""
    parts = re.split(r"(?m)^(?=## )", review_md.read_text())
    for i, part in enumerate(parts):
        m = re.match(r"## (e\d+) ", part)
        if m and m.group(1) in verdicts:
            verdict, reason = verdicts[m.group(1)]
            parts[i] = part.replace("verdict:", f"verdict: {verdict}", 1).replace(
                "reason:", f"reason: {reason}", 1
            )
    review_md.write_text("".join(parts))


def proposal_of(lake: Lake, pid_prefix: str) -> tuple[dict, pl.DataFrame]:
    with sql.connect(lake) as con:
        proposals = sql.query(con, "proposals_list")
        row = proposals.filter(pl.col("proposal_id").str.starts_with(pid_prefix)).row(0, named=True)
        edits = sql.query(con, "proposal_edits_of", proposal_id=row["proposal_id"])
    return row, edits


def proposal_id(output: str) -> str:
    return re.search(r"^proposal ([0-9a-f]{12}):", output, re.MULTILINE).group(1)


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    root = tmp_path_factory.mktemp("proposals")
    records = json.loads((AIRLINE / "gpt-4o-airline.json").read_text())
    paths = []
    for i, part in enumerate((records[:100], records[100:150], records[150:])):
        paths.append(root / f"batch{i}.json")
        paths[-1].write_text(json.dumps(part))
    return root, paths


@pytest.fixture(scope="module")
def loop(batches):
    root, (b1, b2, b3) = batches
    lake, out = Lake(root / "lake"), root / "out" / "airline-agent-policy"
    first = distill(root, b1)
    assert first.exit_code == 0, first.output
    v1 = resolve(lake, "latest")
    proposed = distill(root, b2, "--since", v1["version_id"][:10], "--propose")
    assert proposed.exit_code == 0, proposed.output
    pid = proposal_id(proposed.output)
    row, edits = proposal_of(lake, pid)
    assert resolve(lake, "latest")["version_id"] == v1["version_id"]  # nothing published
    return root, lake, out, v1, row, edits, (b3,)


def test_a_proposal_leaves_the_live_skill_alone_and_says_what_it_would_change(loop):
    root, lake, out, v1, row, edits, _ = loop
    assert row["base_version_id"] == v1["version_id"] and row["n_held"] == 0
    assert row["n_new_runs"] == 50  # the second batch, ingested after v1
    assert edits.height == row["n_edits"] > 3
    assert set(edits["kind"]) <= {"added", "changed", "removed"}
    assert (edits["n_trajectories"] >= 2).all()  # min-support holds for what is proposed
    assert (edits["n_new_runs"] > 0).any() and (
        edits["n_new_runs"] <= edits["n_trajectories"]
    ).all()
    folder = root / "out" / "airline-agent-policy.proposals" / row["proposal_id"][:12]
    review_md = (folder / "review.md").read_text()
    assert all(f"## {e} · " in review_md for e in edits["edit_id"])
    assert "evidence: " in review_md and "verdict:" in review_md
    diff = (folder / "changes.diff").read_text()
    first_added = edits.filter(pl.col("kind") == "added").row(0, named=True)
    assert f"+{first_added['text']}" in diff
    assert (folder / "airline-agent-policy" / "SKILL.md").is_file()
    page = (folder / "review.html").read_text()
    assert first_added["text"] in html.unescape(page)
    assert "consolidation-run" in (out / "SKILL.md").read_text()
    assert v1["run_id"] in (out / "SKILL.md").read_text()  # the live folder is still v1


@pytest.fixture(scope="module")
def reviewed(loop):
    root, lake, out, v1, row, edits, _ = loop
    rejected = edits.filter(pl.col("kind") == "added").sort("n_trajectories").row(-1, named=True)
    folder = root / "out" / "airline-agent-policy.proposals" / row["proposal_id"][:12]
    verdicts = {e: ("accept", "") for e in edits["edit_id"]}
    verdicts[rejected["edit_id"]] = ("reject", "handing off is right here")
    mark(folder / "review.md", verdicts)
    done = cli("review", row["proposal_id"][:8], "--lake", lake.uri, env={"T2S_ACTOR": "alice@ci"})
    return done, rejected


def test_review_publishes_exactly_the_accepted_edits(loop, reviewed):
    root, lake, out, v1, row, edits, _ = loop
    done, rejected = reviewed
    assert done.exit_code == 0, done.output
    assert f"{edits.height - 1} edits accepted, 1 rejected, 0 held back" in done.output
    assert "gate: not evaluated" in done.output

    v2 = resolve(lake, "latest")
    assert v2["parent_version_id"] == v1["version_id"] and v2["created_by"] == "alice@ci"
    with sql.connect(lake) as con:
        d = diff_statements(con, version_statements(con, v1), version_statements(con, v2))
    shown = {("added", normalise(s["text"])) for s in d.added}
    shown |= {("removed", normalise(s["text"])) for s in d.removed}
    shown |= {("changed", normalise(c["new"]["text"])) for c in d.changed}
    accepted = edits.filter(pl.col("edit_id") != rejected["edit_id"])
    assert shown == {(k, normalise(t)) for k, t in accepted.select("kind", "text").iter_rows()}
    assert normalise(rejected["text"]) not in {
        normalise(t) for t in version_statements_texts(lake, v2)
    }

    decisions = lake.read("decisions").sort("edit_id")
    assert decisions.height == edits.height and set(decisions["version_id"]) == {v2["version_id"]}
    no = decisions.filter(pl.col("verdict") == "reject").row(0, named=True)
    assert no["text"] == rejected["text"] and no["reason"] == "handing off is right here"
    assert no["decided_by"] == "alice@ci" and no["n_trajectories"] == rejected["n_trajectories"]
    # every line of v2 keeps its evidence: lessons of the run that wrote it
    statements = version_statements(sql.connect(lake), v2)
    from_runs = statements.filter(pl.col("origin") != "base")
    assert from_runs.height and (from_runs["n_trajectories"] >= 2).all()
    assert (out / "SKILL.md").read_text().count(v2["run_id"]) == 1

    # a reviewed skill is a run like any other: coverage and lesson fate read it
    from pipeline.report.coverage import coverage
    from pipeline.report.views import connect_views

    assert coverage(lake, skill=out).run["run_id"] == v2["run_id"]
    con = connect_views(lake)
    fates = con.sql(
        "select fate, dropped_stage, dropped_reason, lesson_id from lesson_fate where run_id = $r",
        params={"r": v2["run_id"]},
    ).pl()
    con.close()
    by_review = fates.filter(pl.col("dropped_stage") == "review")
    assert by_review.height and set(by_review["lesson_id"]) <= set(rejected["lesson_ids"])
    assert set(by_review["dropped_reason"]) == {"rejected in review: handing off is right here"}
    assert "unaccounted" not in set(fates["fate"])

    again = cli("review", row["proposal_id"][:8], "--lake", lake.uri, "--accept-all")
    assert again.exit_code != 0 and "reviewed already" in again.output


def version_statements_texts(lake: Lake, version: dict) -> list[str]:
    with sql.connect(lake) as con:
        return version_statements(con, version)["text"].to_list()


def test_a_rejected_statement_is_held_back_until_its_evidence_grows(loop, reviewed):
    root, lake, out, v1, row, edits, (b3,) = loop
    assert reviewed[0].exit_code == 0, reviewed[0].output
    rejected = lake.read("decisions").filter(pl.col("verdict") == "reject").row(0, named=True)
    third = distill(root, b3, "--since", "latest", "--propose")
    assert third.exit_code == 0, third.output
    assert "1 held back by earlier rejections" in third.output
    later, later_edits = proposal_of(lake, proposal_id(third.output))
    assert later["base_version_id"] == resolve(lake, "latest")["version_id"]
    held = later_edits.filter(pl.col("held_by").is_not_null()).row(0, named=True)
    assert normalise(held["text"]) == normalise(rejected["text"])
    assert held["held_by"] == rejected["decision_id"]
    assert held["n_trajectories"] < 2 * rejected["n_trajectories"]
    assert f"rejected {rejected['decided_at']:%Y-%m-%d} by alice@ci" in held["note"]
    proposed = root / "out" / "airline-agent-policy.proposals" / later["proposal_id"][:12]
    assert normalise(held["text"]) not in normalise(
        (proposed / "airline-agent-policy" / "SKILL.md").read_text()
    )
    assert "## Held back" in (proposed / "review.md").read_text()

    # with a lower bar for evidence, the same statement comes back, saying it was rejected
    lower = distill(root, b3, "--since", "latest", "--propose", "--resurface", "1.0")
    assert lower.exit_code == 0, lower.output
    _, back = proposal_of(lake, proposal_id(lower.output))
    again = back.filter(pl.col("text") == held["text"]).row(0, named=True)
    assert again["held_by"] is None and "proposed again" in again["note"]


@pytest.fixture
def server(loopback, monkeypatch):
    loopback.responder = answer
    monkeypatch.setenv("OPENAI_API_KEY", "loopback-key")
    return loopback


def test_the_gate_refuses_a_proposal_that_loses_to_the_skill_in_use(batches, server, tmp_path):
    _, (b1, b2, _) = batches
    root = tmp_path
    first = distill(root, b1)  # v1 from the first batch, then a worse base skill proposed
    assert first.exit_code == 0, first.output
    worse = tmp_path / "worse" / "airline-agent-policy"
    worse.parent.mkdir()
    shutil.copytree(BASE, worse)
    with (worse / "SKILL.md").open("a") as f:
        f.write("\n## Misleading\n\n- Answer 'wrong' to every question.\n")
    proposed = cli(
        "distill", b2, "--source", "tau-bench-airline", "--lake", root / "lake",
        "--base-skill", worse, "--out", root / "out" / "airline-agent-policy", "--no-report",
        "--propose",
    )  # fmt: skip
    assert proposed.exit_code == 0, proposed.output
    pid = proposal_id(proposed.output)
    row, _ = proposal_of(Lake(root / "lake"), pid)
    settings = tmp_path / "models.toml"
    settings.write_text("[model]\nmax_retries = 0\ntimeout_s = 5.0\n")
    evaluated = cli(
        "eval", "--split", "test", "--limit", "6", "--model", "m", "--base-url", server.url,
        "--settings", settings, "--lake", root / "lake",
        "--skill", f"{row['path']}/airline-agent-policy",
        "--incumbent", root / "out" / "airline-agent-policy", "--margin", "0.05",
    )  # fmt: skip
    assert evaluated.exit_code == 3, evaluated.output  # the guard refused it
    live = resolve(Lake(root / "lake"), "latest")["version_id"]

    refused = cli("review", pid, "--lake", root / "lake", "--accept-all")
    assert refused.exit_code == 3, refused.output
    assert "the gate refuses proposal" in refused.output and "refuse" in refused.output
    assert resolve(Lake(root / "lake"), "latest")["version_id"] == live  # nothing published
    assert Lake(root / "lake").read("decisions").height == 0

    forced = cli("review", pid, "--lake", root / "lake", "--accept-all", "--force")
    assert forced.exit_code == 0, forced.output
    assert "gate: eval" in forced.output and "refuse" in forced.output
    assert recorded(Lake(root / "lake")).height == 2
    assert "## Misleading" in (root / "out" / "airline-agent-policy" / "SKILL.md").read_text()


def test_a_first_skill_proposed_and_reviewed_at_a_terminal(batches, tmp_path):
    _, (b1, _, _) = batches
    proposed = distill(tmp_path, b1, "--propose")
    assert proposed.exit_code == 0, proposed.output
    out = tmp_path / "out" / "airline-agent-policy"
    assert not out.exists()  # nothing was live, and nothing is yet
    lake = Lake(tmp_path / "lake")
    row, edits = proposal_of(lake, proposal_id(proposed.output))
    assert row["base_version_id"] is None and set(edits["kind"]) == {"added"}
    answers = "r\nnot for new agents\n" + "a\n\n" * (edits.height - 1)
    done = CliRunner().invoke(
        main, ["review", row["proposal_id"], "--lake", str(lake.uri), "--ask"], input=answers
    )
    assert done.exit_code == 0, done.output
    assert f"{edits.height - 1} edits accepted, 1 rejected" in done.output
    first = edits.row(0, named=True)
    assert f"{first['edit_id']} · added" in done.output and "evidence:" in done.output
    v1 = resolve(lake, "latest")
    assert v1["parent_version_id"] is None and (out / "SKILL.md").is_file()
    assert normalise(first["text"]) not in normalise((out / "SKILL.md").read_text())
    no = lake.read("decisions").filter(pl.col("verdict") == "reject").row(0, named=True)
    assert no["edit_id"] == first["edit_id"] and no["reason"] == "not for new agents"

    again = distill(tmp_path, b1, "--propose")  # the same runs: only the rejected one differs
    assert again.exit_code == 0, again.output
    assert "nothing to propose" in again.output and "held back (1)" in again.output


def test_a_proposal_made_against_an_older_version_is_refused(batches, tmp_path):
    _, (b1, b2, b3) = batches
    assert distill(tmp_path, b1).exit_code == 0
    proposed = distill(tmp_path, b2, "--propose")
    assert proposed.exit_code == 0, proposed.output
    assert distill(tmp_path, b3).exit_code == 0  # published directly: the live version moved on
    lake = Lake(tmp_path / "lake")
    stale = cli("review", proposal_id(proposed.output), "--lake", lake.uri, "--accept-all")
    assert stale.exit_code == 1 and "the proposal was made against" in stale.output
    assert lake.read("decisions").height == 0
