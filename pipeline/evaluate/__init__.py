"""Evaluate skills: an agent runner, environments, rollout and eval, attribution, the guard.

``env`` (the plug-in interface and registry), ``wikitablequestions`` (the built-in environment),
``skill`` (a skill folder as the agent sees it), ``agent`` (one episode), ``record`` (episodes into
lake rows), ``run`` (arms over tasks, batched and resumable), ``summary`` (intervals, comparisons,
the guard), ``stages`` (``rollout`` and ``evaluate``), ``commands`` and ``show`` (the CLI).
"""
