"""Ingest: raw trajectory files -> the lake's trajectories and steps tables.

- ``discover``: which files a list of paths means; ``reader``: one file (or a batch) read in a
  worker; ``formats``: one adapter per input format, detected from content; ``record``: the run
  and step model the adapters share; ``frames``: runs -> rows with content-hash ids;
  ``labels``: outcomes from a side file; ``lakestate`` and ``run``: the parts written, replaced
  and removed, and ``ingest_paths``, the entry point other stages call.
- ``stats``: counts over the lake; ``synth``: synthetic runs in every format.
"""
