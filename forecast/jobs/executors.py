"""Pluggable executors for independent backtest tasks.

An executor has one method, ``map(fn, items) -> list``: it applies a picklable top-level
function to each item and returns the results in the order of ``items``.  Tasks carry their
own seeds (derived from the base seed and the origin's index), so the results do not depend
on the executor, on the number of workers or on the order tasks finish.

* :class:`SerialExecutor`: in this process, one after the other (tests, debugging).
* :class:`LocalProcessExecutor`: a ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (safe with PyTensor, numba and threads); the default.
* :class:`DaskExecutor`: a Dask ``distributed`` cluster at a scheduler address
  (``tcp://host:8786``); each worker loads the data itself from the paths in the task, so
  the files must be readable at the same paths on the workers.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Worker processes of the default local executor (one NUTS fit already runs 2 chains).
DEFAULT_LOCAL_WORKERS = 2


class Executor(Protocol):
    """Anything with ``map(fn, items) -> list`` in the order of ``items``."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


class SerialExecutor:
    """Run the tasks one after the other in this process."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]


class LocalProcessExecutor:
    """Run the tasks in local worker processes (``spawn``).

    Parameters
    ----------
    max_workers : int, optional
        Default ``min(2, number of tasks)``.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        workers = self.max_workers or min(DEFAULT_LOCAL_WORKERS, len(items))
        log.info("running %d task(s) in %d local process(es)", len(items), workers)
        context = multiprocessing.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(level, context.Lock()),
        ) as pool:
            return list(pool.map(fn, items))


def _start_worker(level: int, import_lock: Any) -> None:
    """Set up a spawned worker: logging like the parent's, then ArviZ imported one at a time.

    Spawned workers start without logging, so their progress lines would vanish.  ArviZ 0.23
    writes a stamp file under the user's cache folder the first time it is imported on a
    given day, through a temporary file whose name every process shares: two workers
    importing it at once on such a day (a pool started just after midnight, or with a fresh
    cache folder) race on that file and one dies with ``FileNotFoundError`` before it has run
    a task.  Importing it here, under a lock the pool's workers share, lets the first write
    the stamp and the others read it.
    """
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    with import_lock:
        importlib.import_module("arviz")


class DaskExecutor:
    """Run the tasks on a Dask distributed cluster.

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``tcp://10.0.0.5:8786``.
    """

    def __init__(self, address: str) -> None:
        self.address = address

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        from distributed import Client

        if not items:
            return []
        with Client(self.address) as client:
            log.info("running %d task(s) on the Dask cluster at %s", len(items), self.address)
            # pure=False: every task runs, even two with equal arguments.
            futures = client.map(fn, list(items), pure=False)
            results: list[Any] = client.gather(futures)
        return results


def make_executor(scheduler: str | None = None, *, max_workers: int | None = None) -> Executor:
    """Dask at ``scheduler`` when given, else local processes."""
    if scheduler:
        return DaskExecutor(scheduler)
    return LocalProcessExecutor(max_workers)
