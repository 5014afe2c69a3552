"""Build and benchmark tools that are not part of the ``forecast`` package.

Run them from the repository root (``python -m tools.<module>``).  The package never imports
them; tests and benchmarks do (``from tools import ...``).
"""
