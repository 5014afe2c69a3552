"""Sampling progress as log lines, for a fit whose stderr is not a terminal (a cron job's log).

nutpie draws its progress bar with indicatif on a terminal and as HTML in a notebook; anywhere
else the bar hides itself, and a scheduled job's log showed nothing between "sampling" and the
result for minutes.  nutpie also offers a progress callback fed by a text template (the one its
notebook display uses); :func:`logged_progress` routes the progress that would have gone to the
hidden bar through that callback into :mod:`logging`, a line at every tenth of the draws.

nutpie chooses the progress kind inside ``nutpie.sample`` from its private ``_lib`` module, so
the routing replaces that module's ``ProgressType.indicatif`` for the duration of one call
(``tests/test_sampling_progress.py`` fails if a nutpie release moves it).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: The state the callback parses: finished and total draws, then each chain's divergences and
#: whether it is still tuning.  Plain numbers, so that nothing depends on nutpie's wording.
TEMPLATE = (
    "{{ total_finished_draws }} {{ total_draws }}"
    "{% for chain in chains %} {{ chain.divergences }}:{{ chain.tuning }}{% endfor %}"
)
#: Milliseconds between nutpie's calls of the callback.
RATE_MS = 500
#: A line at every this share of the draws (tuning included).
STEP = 0.1


@dataclass(frozen=True)
class Progress:
    """One report of the sampler's state."""

    finished: int
    total: int
    divergences: int
    tuning: bool

    @classmethod
    def parse(cls, text: str) -> Progress:
        """Read the text :data:`TEMPLATE` renders."""
        finished, total, *chains = text.split()
        states = [chain.split(":") for chain in chains]
        return cls(
            finished=int(finished),
            total=int(total),
            divergences=sum(int(divergences) for divergences, _ in states),
            tuning=any(tuning == "true" for _, tuning in states),
        )


class ProgressLog:
    """Turns the sampler's reports into a log line at every :data:`STEP` of the draws.

    Parameters
    ----------
    emit : callable
        Receives each line (default: ``log.info``).
    clock : callable
        Seconds from an arbitrary origin (default ``time.perf_counter``): elapsed time only.
    """

    def __init__(self, *, emit: Callable[[str], None] | None = None, clock: Callable[[], float] | None = None):
        self._emit = emit or log.info
        self._clock = clock or time.perf_counter
        self._start = self._clock()
        self._next_share = STEP

    def __call__(self, text: str) -> None:
        try:
            progress = Progress.parse(text)
        except ValueError:  # a report this module cannot read is not worth failing a fit over
            return
        if progress.total <= 0:
            return
        share = progress.finished / progress.total
        if share + 1e-12 < self._next_share:
            return
        while self._next_share <= share + 1e-12:
            self._next_share += STEP
        elapsed = self._clock() - self._start
        line = (
            f"sampling: {share:.0%} ({progress.finished:,} of {progress.total:,} draws, tuning included), "
            f"{progress.divergences} divergence{'' if progress.divergences == 1 else 's'}, {elapsed:.0f} s elapsed"
        )
        if 0 < share < 1:
            line += f", about {elapsed * (1 - share) / share:.0f} s left"
        if progress.tuning:
            line += " (tuning)"
        self._emit(line)


def wants_logged_progress(progressbar: bool) -> bool:
    """Whether progress should go to the log: asked for, and no terminal or notebook to draw it in."""
    if not progressbar:
        return False
    from nutpie.sample import in_notebook

    stream = sys.stderr
    return not (getattr(stream, "isatty", lambda: False)() or in_notebook())


class _ProgressTypes:
    """``nutpie._lib.ProgressType`` with its terminal bar replaced by a logged template."""

    def __init__(self, progress_type: Any, callback: Callable[[str], None], cores: int):
        self._progress_type = progress_type
        self._callback = callback
        self._cores = cores

    def indicatif(self, rate: int) -> Any:
        return self._progress_type.template_callback(RATE_MS, TEMPLATE, self._cores, self._callback)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._progress_type, name)


class _Lib:
    """``nutpie._lib`` with :class:`_ProgressTypes` in place of its ``ProgressType``."""

    def __init__(self, lib: Any, progress_types: _ProgressTypes):
        self._lib = lib
        self.ProgressType = progress_types

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)


@contextlib.contextmanager
def logged_progress(cores: int, callback: Callable[[str], None] | None = None) -> Iterator[None]:
    """Within this block, ``nutpie.sample``'s terminal progress bar becomes log lines.

    Parameters
    ----------
    cores : int
        The chains sampled at once (nutpie's ``cores``).
    callback : callable, optional
        Receives the rendered :data:`TEMPLATE` (default: a fresh :class:`ProgressLog`).
    """
    import nutpie  # noqa: F401  (loads nutpie.sample)

    sample_module: Any = sys.modules["nutpie.sample"]
    lib = sample_module._lib
    sample_module._lib = _Lib(lib, _ProgressTypes(lib.ProgressType, callback or ProgressLog(), cores))
    try:
        yield
    finally:
        sample_module._lib = lib
