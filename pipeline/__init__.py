"""trace2skill: distil a lake of agent trajectories into an Agent Skills folder."""

__version__ = "0.1.0"
