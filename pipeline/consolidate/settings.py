"""Consolidation settings: the thresholds of every stage, with their defaults and checks.

`Thresholds.from_options(**kw)` builds them from keyword arguments (the command's options and
`consolidate(**thresholds)`), rejecting unknown names and values out of range with a message that
names the option. `as_dict()` goes into the run id and the `consolidations.settings` JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from pipeline.settings import SettingsError  # noqa: F401  (one error for every setting)

# The defaults of the consolidation's options, for the function and both commands that take them.
FAN_IN = 5  # inputs per merge-tree node, as in the method's reference code
MIN_SUPPORT = 2  # distinct runs a cluster needs to reach the skill
BATCH_SIZE = 50  # lessons per edit in sequential mode

# Which analyses of a run consolidation reads: each analyst's latest configuration's, or all.
ANALYSES = ("latest", "all")


@dataclass(frozen=True)
class Thresholds:
    # near duplicates: MinHash over character shingles of the normalised title
    near_threshold: float = 0.8  # exact Jaccard a pair needs to be merged
    shingle_size: int = 5
    minhash_bands: int = 10
    minhash_rows: int = 4
    # semantic clusters: embeddings, random-hyperplane LSH, cosine verification
    semantic_threshold: float = 0.9
    lsh_bands: int = 32
    lsh_rows: int = 14
    embedder: str = "lexical"
    # buckets bigger than this pair each member with its first `bucket_pivots` members only
    max_bucket: int = 16
    bucket_pivots: int = 3
    # skill writing
    anchor_threshold: float = 0.35  # cosine a revising lesson needs to attach under a base line
    max_section_items: int = 12  # lessons per section written into SKILL.md (the rest: references)
    max_skill_lines: int = 450  # SKILL.md line budget (the Agent Skills limit is 500)
    seed: int = 0  # hyperplanes of the semantic LSH
    # model summaries: members shown per cluster, nearest its centroid first
    summary_sample: int = 8

    _RANGES = {
        "near_threshold": (0.0, 1.0),
        "semantic_threshold": (-1.0, 1.0),
        "anchor_threshold": (-1.0, 1.0),
        "shingle_size": (1, 64),
        "minhash_bands": (1, 256),
        "minhash_rows": (1, 32),
        "lsh_bands": (1, 256),
        "lsh_rows": (1, 62),
        "max_bucket": (2, 1_000_000),
        "bucket_pivots": (1, 1_000),
        "max_section_items": (0, 1_000),
        "max_skill_lines": (50, 499),
        "seed": (0, 2**31 - 1),
        "summary_sample": (1, 100),
    }

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_options(cls, **options) -> Thresholds:
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise SettingsError(f"unknown setting(s) {unknown}; known: {cls.names()}")
        given = {k: v for k, v in options.items() if v is not None}
        t = cls(**given)
        for name, (lo, hi) in cls._RANGES.items():
            value = getattr(t, name)
            if not lo <= value <= hi:
                raise SettingsError(
                    f"{name.replace('_', '-')} must be in [{lo}, {hi}], got {value}"
                )
        if t.bucket_pivots >= t.max_bucket:
            raise SettingsError("bucket-pivots must be smaller than max-bucket")
        return t

    def as_dict(self) -> dict:
        return asdict(self)
