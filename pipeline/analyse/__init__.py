"""The analyse stage: trajectories in, lessons and per-trajectory analyses out (see `run.py`)."""
