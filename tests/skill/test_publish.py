import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.skill import publish as publish_module
from pipeline.skill.folder import SkillError, SkillFolder, folder_run, load_skill, stage_skill
from pipeline.skill.lint import lint_skill
from pipeline.skill.publish import (
    current_version,
    lock_path,
    publish,
    recover,
    versions_dir,
    writer_lock,
)

NAME = "airline"


def skill(run: str, extra: str = "") -> SkillFolder:
    text = (
        f"---\nname: {NAME}\ndescription: d\nmetadata:\n  consolidation-run: {run}\n---\n\n"
        f"# Airline\n\nRun {run}. See [refs](references/a.md).{extra}\n"
    )
    return SkillFolder(
        {"SKILL.md": text.encode(), "references/a.md": f"# A\n\nfrom {run}\n".encode()}
    )


def write(out: Path, run: str) -> None:
    publish(stage_skill(skill(run), out), out, run)


def beside(out: Path) -> list[str]:
    """What lies beside OUT, besides the versions folder and the lock file."""
    keep = {out.name, versions_dir(out).name, lock_path(out).name}
    return sorted(p.name for p in out.parent.iterdir() if p.name not in keep)


def test_out_is_a_link_to_a_whole_version_readable_as_a_folder(tmp_path):
    out = tmp_path / "skills" / NAME
    write(out, "r1")
    assert out.is_symlink() and out.is_dir()
    assert (
        folder_run(out) == "r1"
        and load_skill(out).render()["references/a.md"] == b"# A\n\nfrom r1\n"
    )
    assert lint_skill(out) == []
    assert Path(os.readlink(out)).parts[0] == f".{NAME}.versions"  # relative: the parent can move
    assert out.resolve().name == NAME  # the resolved folder is named after the skill too
    assert beside(out) == []


def test_the_replaced_version_stays_until_the_next_run(tmp_path):
    out = tmp_path / NAME
    write(out, "r1")
    first = current_version(out)
    write(out, "r2")
    assert folder_run(out) == "r2"
    assert sorted(p.name for p in versions_dir(out).iterdir()) == sorted(
        [first, current_version(out)]
    )
    write(out, "r3")
    assert first not in [p.name for p in versions_dir(out).iterdir()]
    assert len(list(versions_dir(out).iterdir())) == 2
    recover(out)  # the next run keeps only what OUT shows
    assert [p.name for p in versions_dir(out).iterdir()] == [current_version(out)]


def test_a_real_folder_from_an_earlier_version_is_moved_aside_whole(tmp_path):
    out = tmp_path / NAME
    out.mkdir()
    (out / "SKILL.md").write_text("old skill\n")
    write(out, "r1")
    assert out.is_symlink() and folder_run(out) == "r1"
    (previous,) = [v for v in versions_dir(out).iterdir() if v.name != current_version(out)]
    assert (previous / NAME / "SKILL.md").read_text() == "old skill\n"
    assert previous.name < current_version(out)  # older, so a restore never prefers it


@pytest.mark.parametrize("kind", ["file", "foreign link"])
def test_an_out_that_is_not_ours_is_refused_before_anything_is_touched(tmp_path, kind):
    out = tmp_path / NAME
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "file":
        out.write_text("x")
    else:
        out.symlink_to(elsewhere)
    with pytest.raises(SkillError, match=str(out)):
        recover(out)
    with pytest.raises(SkillError, match=str(out)):
        publish(stage_skill(skill("r1"), out), out, "r1")
    assert out.is_symlink() or out.read_text() == "x"


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (publish has no handler that could catch it)."""


def kill_at(monkeypatch, k: int) -> list[int]:
    """Make the k-th rename, link or removal of the next calls raise Killed; returns the count."""
    calls = [0]

    def step(real):
        def call(*args, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                raise Killed
            return real(*args, **kwargs)

        return call

    for name in ("replace", "symlink", "rename"):
        monkeypatch.setattr(publish_module.os, name, step(getattr(os, name)))
    monkeypatch.setattr(publish_module.shutil, "rmtree", step(publish_module.shutil.rmtree))
    return calls


def steps_of_a_publish(tmp_path: Path, start) -> int:
    out = tmp_path / "count" / NAME
    start(out)
    with pytest.MonkeyPatch.context() as mp:
        calls = kill_at(mp, 0)
        write(out, "new")
    return calls[0]


def from_a_link(out: Path) -> None:
    write(out, "older")  # pruned after the next swap
    write(out, "old")


def from_a_real_folder(out: Path) -> None:
    staged = stage_skill(skill("old"), out)
    os.replace(staged, out)


@pytest.mark.parametrize("start", [from_a_link, from_a_real_folder])
def test_a_kill_at_any_step_leaves_the_old_skill_or_the_new_and_a_rerun_cleans_up(
    tmp_path, monkeypatch, start
):
    n = steps_of_a_publish(tmp_path, start)
    assert n >= 4
    seen = set()
    for k in range(1, n + 1):
        out = tmp_path / f"k{k}" / NAME
        start(out)
        with pytest.MonkeyPatch.context() as mp:
            kill_at(mp, k)
            with pytest.raises(Killed):
                write(out, "new")
        # whatever a reader sees at OUT is a whole skill, the old or the new
        shown = folder_run(out) if out.exists() else None
        if start is from_a_link:  # a real folder has to be moved aside before a link can replace it
            assert shown in ("old", "new") and lint_skill(out) == [], k
        recover(out)  # the next run, before it writes anything
        assert folder_run(out) in ("old", "new") and lint_skill(out) == [], k
        seen.add((shown, folder_run(out)))
        assert beside(out) == [], k
        kept = [p.name for p in versions_dir(out).iterdir()]
        assert kept == ([current_version(out)] if out.is_symlink() else []), k
    if start is from_a_link:
        assert seen == {("old", "old"), ("new", "new")}
    else:  # killed between the two renames: the new version, its rows already written, is restored
        assert seen == {("old", "old"), (None, "new")}


def test_a_folder_moved_aside_by_an_earlier_version_is_restored_and_leftovers_removed(tmp_path):
    out = tmp_path / NAME
    aside = tmp_path / f".{NAME}.old-1a2b3c4d"
    aside.mkdir()
    (aside / "SKILL.md").write_text("---\nname: airline\ndescription: d\n---\n\n# Old\n")
    staged = tmp_path / f".{NAME}.tmp-5e6f7a8b"
    staged.mkdir()
    (staged / "SKILL.md").write_text("half of a new skill")
    other = tmp_path / ".other.tmp-00000000"  # another skill's: not ours to remove
    other.mkdir()
    done = recover(out)
    assert (out / "SKILL.md").read_text().endswith("# Old\n") and not out.is_symlink()
    assert beside(out) == [other.name]
    assert any("restored" in d for d in done) and any(str(staged) in d for d in done)


def test_a_missing_out_is_restored_from_the_newest_whole_version(tmp_path):
    out = tmp_path / NAME
    write(out, "r1")
    write(out, "r2")
    partial = versions_dir(out) / "99999999T000000000000Z-half"
    partial.mkdir()  # a version that never received its folder
    out.unlink()
    recover(out)
    assert folder_run(out) == "r2" and not partial.exists()
    write(out, "r3")  # r2 is kept as the previous version
    shutil.rmtree(versions_dir(out) / current_version(out))  # OUT now links to nothing
    recover(out)
    assert folder_run(out) == "r2"


def test_a_second_writer_is_refused_naming_out(tmp_path):
    out = tmp_path / NAME
    with writer_lock(out):
        with pytest.raises(SkillError, match=f"{out} is being written by another consolidation"):
            with writer_lock(out):
                pass
        code = (
            "import sys; from pathlib import Path; from pipeline.skill.publish import writer_lock\n"
            "with writer_lock(Path(sys.argv[1])): pass"
        )
        other = subprocess.run(
            [sys.executable, "-c", code, str(out)],
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])},
        )
        assert other.returncode == 1 and f"(process {os.getpid()})" in other.stderr
    with writer_lock(out):  # released when the first writer ends
        pass
