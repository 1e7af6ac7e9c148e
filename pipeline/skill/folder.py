"""A skill folder in memory: read a base skill safely, start an empty one, write one atomically.

Reads a folder (SKILL.md plus any other files) into a `SkillFolder`: Markdown files become
`Document`s, everything else is kept as bytes. Nothing outside the folder is ever read: a symlink
that resolves outside it is an error naming the link. Writes go to a temporary sibling folder,
never over the base; `pipeline.skill.publish` exposes it at the skill's path in one step.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipeline.errors import UserError
from pipeline.skill.document import Document, FrontmatterError, split_frontmatter

SKILL_FILE = "SKILL.md"
RUN_KEY = "consolidation-run"  # the SKILL.md metadata naming the consolidation that wrote it


class SkillPathError(ValueError):
    """A path would leave the skill folder (.., absolute, a symlink out)."""


class SkillError(UserError, ValueError):
    """A skill folder cannot be read or written as asked."""


def safe_relpath(path: str) -> str:
    """A normalised relative POSIX path inside the folder, or SkillPathError."""
    if not path or not isinstance(path, str) or "\x00" in path:
        raise SkillPathError(f"invalid path {path!r}")
    if "\\" in path:
        raise SkillPathError(f"path {path!r}: use '/' separators")
    p = PurePosixPath(path)
    if p.is_absolute() or (len(path) > 1 and path[1] == ":"):
        raise SkillPathError(f"path {path!r} is absolute; paths must stay inside the skill folder")
    parts = [s for s in p.parts if s != "."]
    if not parts:
        raise SkillPathError(f"path {path!r} names the folder itself")
    if ".." in parts:
        raise SkillPathError(
            f"path {path!r} contains '..'; paths must stay inside the skill folder"
        )
    return "/".join(parts)


@dataclass
class SkillFolder:
    files: dict[str, Document | bytes] = field(default_factory=dict)
    source: Path | None = None  # where it was read from

    @property
    def skill(self) -> Document:
        doc = self.files.get(SKILL_FILE)
        if not isinstance(doc, Document):
            raise SkillError("the skill folder has no SKILL.md")
        return doc

    def markdown(self) -> dict[str, Document]:
        return {p: d for p, d in sorted(self.files.items()) if isinstance(d, Document)}

    def render(self) -> dict[str, bytes]:
        return {
            p: (d.render().encode("utf-8") if isinstance(d, Document) else d)
            for p, d in sorted(self.files.items())
        }


def _inside(root: Path, target: Path) -> bool:
    return target == root or root in target.parents


def load_skill(directory: str | os.PathLike) -> SkillFolder:
    """Read a skill folder; SkillError / SkillPathError name the file at fault."""
    root = Path(directory)
    if not (root / SKILL_FILE).is_file():
        raise SkillError(f"{root}: no {SKILL_FILE} (is this a skill folder?)")
    real = root.resolve()
    folder = SkillFolder(source=root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames):
            sub = here / name
            if sub.is_symlink() and not _inside(real, sub.resolve()):
                raise SkillPathError(f"{sub}: symlink points outside the skill folder")
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() and not _inside(real, path.resolve()):
                raise SkillPathError(f"{path}: symlink points outside the skill folder")
            data = path.read_bytes()
            if not name.endswith(".md"):
                folder.files[rel] = data
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SkillError(f"{path}: not UTF-8 text ({exc})") from None
            try:
                folder.files[rel] = Document.parse(text, with_frontmatter=rel == SKILL_FILE)
            except FrontmatterError as exc:
                raise SkillError(f"{path}: {exc}") from None
    return folder


def folder_run(directory: str | os.PathLike) -> str | None:
    """The consolidation run a skill folder names in its SKILL.md metadata, if it names one."""
    path = Path(directory) / SKILL_FILE
    try:
        meta, _ = split_frontmatter(path.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError, FrontmatterError):
        return None
    metadata = meta.get("metadata")
    run = metadata.get(RUN_KEY) if isinstance(metadata, dict) else None
    return run if isinstance(run, str) and run else None


def empty_skill(name: str, description: str, title: str, intro: str) -> SkillFolder:
    """A new skill with a title and one paragraph, for the create mode."""
    doc = Document.parse(f"# {title}\n\n{intro}\n", origin="structure")
    doc.frontmatter = {"name": name, "description": description}
    return SkillFolder({SKILL_FILE: doc})


def check_target(out_dir: Path, base_dir: Path | None) -> None:
    """Refuse to write over (or into, or around) the base skill."""
    if base_dir is None:
        return
    out, base = out_dir.resolve(), base_dir.resolve()
    if _inside(base, out) or _inside(out, base):
        raise SkillError(
            f"output folder {out_dir} overlaps the base skill {base_dir}: choose another --out"
        )


def write_files(files: dict[str, bytes], directory: Path) -> None:
    for rel, data in files.items():
        target = directory / safe_relpath(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def stage_skill(folder: SkillFolder, out_dir: Path) -> Path:
    """Write the folder to a temporary sibling of `out_dir`; returns that temporary path."""
    return stage_files(folder.render(), out_dir)


def stage_files(files: dict[str, bytes], out_dir: Path) -> Path:
    """Write the files to a temporary sibling of `out_dir` (`.OUT.tmp-*`, which `recover` clears
    after a crash); returns that temporary path."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write_files(files, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def swap_into_place(tmp: Path, out_dir: Path) -> Path:
    """Replace `out_dir` by `tmp`: the old folder is moved aside first, then removed."""
    old = None
    if out_dir.is_symlink() or out_dir.is_file():
        raise SkillError(f"{out_dir} exists and is not a folder; refusing to replace it")
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out_dir
