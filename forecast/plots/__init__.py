"""Figures drawn from draws and check results (floor 5): pure functions returning figures.

Plot functions never choose a matplotlib backend (the caller does, e.g. ``Agg`` in jobs and
tests), never save files themselves and never swallow an exception: a failed plot is shown,
loudly, by whoever asked for it.
"""
