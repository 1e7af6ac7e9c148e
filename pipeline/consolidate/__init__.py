"""Consolidate: lessons -> clusters -> one lesson per cluster -> merge tree -> skill patch.

Entry point: `pipeline.consolidate.run.consolidate` (and the `trace2skill consolidate` command).
Reads `lessons` and `trajectories`; writes the consolidation tables and a skill folder.
"""
