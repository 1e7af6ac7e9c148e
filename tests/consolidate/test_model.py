"""Consolidation with a model, end to end through the loopback server and the real client.

The fixture lake has five kept clusters in two sections (see conftest.fixture_rows). The scripted
model (scripted.py) answers like a careful model; each test bends some answers to the fault it is
about: a summary citing a non-member, a merge answer leaving input ids out, an invented anchor,
failed calls, a spent budget.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipeline.console import Console
from pipeline.consolidate.run import consolidate
from pipeline.skill.lint import lint_skill
from tests.conftest import DATA
from tests.consolidate import scripted
from tests.consolidate.conftest import write_lake

BASE = DATA / "tau-bench-airline" / "base-skill"
MISSING_ANCHOR = "Agents must never look at the membership tier"


def rows(lake, table, run_id) -> pl.DataFrame:
    return lake.read(table).filter(pl.col("run_id") == run_id)


def faulty(body: dict) -> dict:
    """The scripted model, with the faults the end-to-end test checks."""
    kind, text, again = scripted.kind(body), scripted.user_text(body), scripted.is_reask(body)
    answer = scripted.answer(body)
    if kind == "summary":
        if "cabin=business" in text and not again:  # a non-member, fixed when re-asked
            answer["cited_lesson_ids"] = ["L1", "L7"]
        if "[L1] Do not call book_reservation twice" in text:  # a non-member, twice
            answer["cited_lesson_ids"] = ["0123456789abcdef0123"]
        if "[L1] Call book_reservation twice" in text:  # nothing cited, twice
            answer["cited_lesson_ids"] = []
        return scripted.reply(answer)
    found = scripted.entries(body)
    sections = {e["section"] for e in found}
    if sections == {"Book flight"}:  # keeps the first input, forgets the others, twice
        return scripted.reply({"keep": ["S1"], "statements": [], "conflicts": [], "dropped": []})
    if sections == {"Modify flight"}:  # resolves the conflict but never lists the loser
        return scripted.reply(
            {"keep": ["S1"], "statements": [], "dropped": [],
             "conflicts": [{"ids": ["S1", "S2"], "resolution": "economy: 3 runs against 2"}]}
        )  # fmt: skip
    # the root: the membership statement placed with an anchor the skill does not contain
    tier = next(e for e in found if "membership tier" in e["title"])
    answer["keep"].remove(tier["id"])
    answer["statements"].append(
        scripted.statement([tier["id"]], "Book flight", tier["title"], edit="replace",
                           anchor=MISSING_ANCHOR)
    )  # fmt: skip
    return scripted.reply(answer)


@pytest.fixture
def run(lake, loopback, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    loopback.responder = faulty
    settings = loopback.settings(prices={"loopback-model": (1.0, 2.0)})

    def go(console=None):
        return consolidate(
            lake,
            base_skill=BASE,
            out_dir=tmp_path / "airline-agent-policy",
            settings=settings,
            console=console or Console(0),
        )

    return go


def test_the_model_summarises_and_merges_and_every_fault_is_caught(run, lake, loopback, capsys):
    s = run(Console(1))
    assert s.lint_ok and lint_skill(s.out_dir) == [] and s.model == "loopback-model"
    # 5 summaries + 2 re-asks (business, do-not-call) ... + the one citing nothing, re-asked too
    summaries = [b for b in loopback.chat_requests if scripted.kind(b) == "summary"]
    merges = [b for b in loopback.chat_requests if scripted.kind(b) == "merge"]
    assert len(summaries) == 5 + 3 and len(merges) == 3 + 2
    assert s.n_calls == len(loopback.chat_requests) == 13 and s.tokens_in > 0 and s.cost_usd > 0

    clusters = rows(lake, "clusters", s.run_id).filter(pl.col("kept"))
    by_title = {r["title"]: r for r in clusters.iter_rows(named=True)}
    business = by_title["Pass cabin=business to update_reservation_flights"]
    assert business["summariser"] == "loopback-model" and business["summary_fallback"] is None
    assert business["summary_call_key"] in set(lake.read("llm_calls")["key"])
    fell = clusters.filter(pl.col("summary_fallback").is_not_null()).sort("title")
    assert fell["summariser"].to_list() == ["offline", "offline"]
    assert "cites no lesson" in fell["summary_fallback"][0]
    assert "'0123456789abcdef0123', which are not among the lessons shown" in fell["summary_fallback"][1]  # fmt: skip
    assert "again after a re-ask" in fell["summary_fallback"][1]
    assert s.n_fallbacks == 2

    nodes = rows(lake, "merge_nodes", s.run_id).sort("level", "section")
    assert nodes["model"].to_list() == ["loopback-model"] * 3
    book, modify, root = nodes.rows(named=True)
    assert (book["section"], modify["section"], root["section"]) == ("Book flight", "Modify flight", None)  # fmt: skip
    assert book["n_omitted"] == 2 and book["repair_call_key"] is not None
    assert "2 carried by the offline merger" in book["fallback"]
    # the forgotten inputs tie (2 runs each): the offline merger keeps them as one statement
    assert "tie at 2 runs" in book["conflicts"]
    assert (
        modify["n_omitted"] == 1 and "1 dropped as omitted after a conflict" in modify["fallback"]
    )
    assert json.loads(modify["conflicts"])[0]["resolution"] == "economy: 3 runs against 2"
    assert root["n_omitted"] == 0 and root["fallback"] is None

    dropped = rows(lake, "dropped", s.run_id)
    lost = dropped.filter(pl.col("stage") == "merge")
    assert lost.height == 2 and lost["node_id"].unique().to_list() == [modify["node_id"]]
    assert lost["reason"].str.starts_with("omitted by the model after a conflict it resolved: economy").all()  # fmt: skip
    edges = rows(lake, "merge_edges", s.run_id)
    assert edges.filter(pl.col("parent_node_id") == modify["node_id"])["llm_call_key"].to_list() == [modify["llm_call_key"]] * 2  # fmt: skip

    # the invented anchor: reported, not skipped, and the statement still in its reference file
    ops = rows(lake, "patch_ops", s.run_id)
    missing = ops.filter(pl.col("status") == "anchor_missing")
    assert missing["anchor"].to_list() == [MISSING_ANCHOR] and missing["op"].to_list() == [
        "replace"
    ]
    assert s.op_status["anchor_missing"] == 1
    err = capsys.readouterr().err
    assert "replace on SKILL.md [Book flight]: anchor_missing" in err
    assert f"merge node {book['node_id']}: the model left out S2, S3 after a re-ask" in err
    assert "2 cluster(s) kept their extractive summary" in err

    lines = rows(lake, "skill_lines", s.run_id)
    added = lines.filter(pl.col("origin") == "added")
    assert added.height == s.n_skill_lines > 0
    assert (added["lesson_ids"].list.len() > 0).all() and added["merge_node_id"].null_count() == 0
    tier = added.filter(pl.col("text").str.contains("membership tier"))
    assert set(tier["file"]) == {"references/book-flight.md"}  # not in SKILL.md: the op failed
    text = (s.out_dir / "SKILL.md").read_text()
    assert "Runs disagree" in text and "cabin=economy" in text and "cabin=business" not in text

    row = rows(lake, "consolidations", s.run_id).row(0, named=True)
    assert (row["model"], row["n_calls"], row["n_fallbacks"]) == ("loopback-model", 13, 2)
    assert row["tokens_in"] == s.tokens_in and row["cost_usd"] == pytest.approx(s.cost_usd)
    settings = json.loads(row["settings"])
    assert settings["prompts"][0].startswith("summarise-") and settings["temperature"] == 0.0


def test_a_rerun_is_answered_from_the_cache(run, lake, loopback):
    first = run()
    skill = (first.out_dir / "SKILL.md").read_text()
    loopback.reset()
    again = run()
    assert loopback.chat_requests == [], "a rerun makes no model call"
    assert again.run_id == first.run_id and again.n_calls == 0 and again.cache_hits == 13
    assert (again.out_dir / "SKILL.md").read_text() == skill
    row = rows(lake, "consolidations", again.run_id).row(0, named=True)
    assert (row["n_calls"], row["cache_hits"], row["tokens_in"]) == (0, 13, 0)


def test_failed_calls_and_a_spent_budget_fall_back_offline(lake, loopback, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)

    def answer(body):
        if scripted.kind(body) == "summary" and "cabin=economy" in scripted.user_text(body):
            return {"status": 400, "body": {"error": {"message": "context length exceeded"}}}
        return scripted.responder(body)

    loopback.responder = answer
    loopback.fail("500", times=3)  # retried by the model layer: no fallback for these
    s = consolidate(lake, out_dir=tmp_path / "a", settings=loopback.settings())
    assert s.lint_ok and loopback.faults["500"] == 3 and s.n_fallbacks == 1
    economy = rows(lake, "clusters", s.run_id).filter(pl.col("summary_fallback").is_not_null())
    assert economy["title"].to_list() == ["Pass cabin=economy to update_reservation_flights"]
    assert "model call failed" in economy["summary_fallback"][0]
    assert "context length exceeded" in economy["summary_fallback"][0]

    # a budget one call spends: the rest is done offline, and the run says so
    loopback.reset()
    tight = loopback.settings(concurrency=1, token_budget=1, temperature=0.5)
    s = consolidate(lake, out_dir=tmp_path / "b", settings=tight)
    assert s.budget_spent and s.lint_ok and s.n_calls == 1
    nodes = rows(lake, "merge_nodes", s.run_id)
    assert set(nodes["model"]) == {"offline"}
    assert nodes["fallback"].str.contains("the model budget is spent").all()
    fell = rows(lake, "clusters", s.run_id).filter(pl.col("kept"))["summary_fallback"]
    assert fell.null_count() == 1 and fell.drop_nulls().str.contains("budget exhausted").all()
    row = rows(lake, "consolidations", s.run_id).row(0, named=True)
    assert row["n_fallbacks"] == 4 + nodes.height


def test_sequential_edits_go_through_the_model_one_batch_at_a_time(lake, loopback, tmp_path, fixture_rows):  # fmt: skip
    write_lake(lake, fixture_rows)

    def answer(body):
        if scripted.kind(body) != "sequential":
            return scripted.responder(body)
        found = scripted.entries(body)
        business = {e["id"] for e in found if e["id"][0] == "L" and "cabin=business" in e["title"]}
        voucher = {e["id"] for e in found if "voucher" in e["title"]}  # left out, even re-asked
        out = scripted.answer(body)
        out["keep"] = [i for i in out["keep"] if i not in business | voucher]
        for st in out["statements"]:
            st["ids"] = [i for i in st["ids"] if i not in business]
        out["statements"] = [st for st in out["statements"] if st["ids"]]
        reason = "economy was seen in more runs"  # the weaker cabin setting is dropped
        out["dropped"] += [{"id": i, "reason": reason} for i in sorted(business)]
        return scripted.reply(out)

    loopback.responder = answer
    settings = loopback.settings()
    out = tmp_path / "seq" / "airline-agent-policy"
    s = consolidate(lake, base_skill=BASE, out_dir=out, settings=settings, mode="sequential", batch_size=4)  # fmt: skip
    assert s.lint_ok and s.n_nodes == 4 and s.n_calls == 5 == len(loopback.chat_requests)
    bodies = loopback.chat_requests
    assert all(scripted.kind(b) == "sequential" for b in bodies)
    # the model sees the skill so far: the second batch's prompt lists the first batch's statement
    assert "[S1] section: Book flight | seen in 4 failed runs" in scripted.user_text(bodies[1])
    nodes = rows(lake, "merge_nodes", s.run_id).sort("level")
    assert set(nodes["model"]) == {"loopback-model"} and nodes["llm_call_key"].null_count() == 0
    assert nodes["n_omitted"].to_list() == [0, 0, 0, 1]
    assert "1 edited offline" in nodes["fallback"][3] and nodes["repair_call_key"][3] is not None
    members = rows(lake, "cluster_members", s.run_id)
    assert "model" in set(members["stage"])  # lessons the model joined to a statement
    dropped = rows(lake, "dropped", s.run_id)
    business = dropped.filter(pl.col("reason").str.contains("economy was seen in more runs"))
    assert business.height == 2 and set(business["stage"]) == {"merge"}
    voucher = lake.read("lessons").filter(pl.col("title").str.contains("voucher"))["lesson_id"]
    # edited offline, then pruned as a one-off like any other
    assert dropped.filter(pl.col("lesson_id") == voucher[0])["stage"].to_list() == ["support"]
    edges = rows(lake, "merge_edges", s.run_id).filter(pl.col("child_kind") == "lesson")
    assert edges.height == 16 and edges.filter(~pl.col("carried")).height == 2
    clusters = rows(lake, "clusters", s.run_id)
    assert "loopback-model" in set(clusters["summariser"])
    added = rows(lake, "skill_lines", s.run_id).filter(pl.col("origin") == "added")
    assert added.height > 0 and (added["lesson_ids"].list.len() > 0).all()
    row = rows(lake, "consolidations", s.run_id).row(0, named=True)
    assert (row["mode"], row["n_calls"], row["n_nodes"]) == ("sequential", 5, 4)

    loopback.reset()
    again = consolidate(lake, base_skill=BASE, out_dir=out, settings=settings, mode="sequential", batch_size=4)  # fmt: skip
    assert loopback.chat_requests == [] and again.n_calls == 0 and again.run_id == s.run_id


def test_the_command_takes_the_shared_model_options(lake, loopback, tmp_path, fixture_rows):
    from click.testing import CliRunner

    from pipeline.cli import main

    write_lake(lake, fixture_rows)
    loopback.responder = scripted.responder
    args = ["consolidate", "--lake", lake.uri, "--out", str(tmp_path / "skill"),
            "--model", "loopback-model", "--base-url", loopback.url, "--api-key", "k",
            "--concurrency", "4", "--summary-sample", "3"]  # fmt: skip
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "model calls (cache hits)" in res.output and "8 (0)" in res.output
    assert max(len(scripted.summary_lessons(b)) for b in loopback.chat_requests
               if scripted.kind(b) == "summary") == 2  # fmt: skip
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "0 (8)" in res.output


def test_the_settings_pick_the_embedder(lake, loopback, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    settings = loopback.settings(model="offline", embedder="openai:loopback-embed")
    s = consolidate(lake, out_dir=tmp_path / "e", settings=settings)
    assert loopback.embedding_requests and not loopback.chat_requests
    assert s.model == "offline" and s.n_calls == len(loopback.embedding_requests)
    row = rows(lake, "consolidations", s.run_id).row(0, named=True)
    assert json.loads(row["settings"])["thresholds"]["embedder"] == "openai:loopback-embed"
    assert row["n_calls"] == s.n_calls and row["tokens_in"] > 0
    # --embedder (a threshold) wins over the settings
    s = consolidate(lake, out_dir=tmp_path / "f", settings=settings, embedder="lexical")
    assert s.n_calls == 0


def test_the_batch_api_serves_the_summaries_and_the_merges(lake, loopback, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    loopback.responder = scripted.responder
    s = consolidate(lake, out_dir=tmp_path / "b", settings=loopback.settings(batch=True))
    assert s.lint_ok and s.n_calls == 8 and s.n_fallbacks == 0
    batches = [r for r in loopback.received if r["path"].endswith("/batches")]
    assert len(batches) == 3  # the summaries, then each level of the tree
    nodes = rows(lake, "merge_nodes", s.run_id)
    assert set(nodes["model"]) == {"loopback-model"}
