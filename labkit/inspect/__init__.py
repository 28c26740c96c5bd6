"""Looking inside a model: ``attention`` (heads) and ``attribution`` (which tokens drove a
prediction), with the checks and memory budgets they share (``_checks``, ``budget``).

Nothing is re-exported here: ``labkit.attention`` / ``labkit.explain`` are the entry points.
"""
