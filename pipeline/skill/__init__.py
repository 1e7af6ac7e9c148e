"""Agent Skills folders: read and write them safely, patch them by code, lint them, and read the
provenance of every line off a patched folder. Used by consolidate; `lint` also works alone."""
