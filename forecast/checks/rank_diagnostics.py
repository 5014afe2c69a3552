r"""Rank-normalised split R-hat and bulk and tail ESS, computed for many elements at once.

The same definitions as ArviZ's ``az.rhat(method="rank")`` and ``az.ess(method="bulk" | "tail",
relative=False)`` (Vehtari et al. 2021, "Rank-normalization, folding, and localization: an
improved R-hat"), step for step, but vectorised over a variable's elements instead of run
element by element: ArviZ ranks, transforms and autocorrelates each scalar in Python.  On 2
chains x 1000 draws of 4,231 scalars (as many as the 45-series ACLED fit stores) ArviZ took
12.4 s and this module 2.3 s (``benchmarks/bench_diagnostics.py``); a warm shipped fit took 69.9 s
where it took 80.8 s.  ``tests/test_diagnostics.py`` holds the results equal to ArviZ's.  The split
draws are sorted once per element (bulk ranks, median, tail quantiles), the normal scores come from
a table, and chunks of elements run on threads: on 2 chains x 3000 draws of 6,713 scalars (the
ACLED fit at the dynamic model's default draws), 5.4 s where the code before took 11.4 s, on 2 cores.

For an element with draws :math:`x_{c,d}` (chain :math:`c`, draw :math:`d`):

* Split chains: each chain's first and last :math:`\lfloor D/2 \rfloor` draws become two chains.
* Rank normalisation :math:`z = \Phi^{-1}((r - 3/8) / (N + 1/4))`, :math:`r` the average rank of a
  draw among all :math:`N` split draws (Blom 1958).
* R-hat: the larger of the split :math:`\hat R` of :math:`z` (bulk) and of the rank-normalised
  folded draws :math:`|x - \operatorname{median}(x)|` (tails).
* Bulk ESS: the ESS of :math:`z`; tail ESS: the smaller ESS of the indicators
  :math:`x \le q_{0.05}` and :math:`x \le q_{0.95}` (:math:`q` the type 7 quantile of all draws).
* ESS: Geyer's initial positive, then initial monotone, sequence of the autocorrelations
  (computed by FFT), as ArviZ's ``_ess``.

An element with a non-finite draw gets NaN everywhere; with fewer than 4 draws everything is
NaN, and R-hat is NaN with a single chain (ArviZ's rules).  An element whose draws are all equal
gets an undefined R-hat (NaN, 0/0) and an ESS equal to its number of draws, as in ArviZ.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.fft import next_fast_len
from scipy.special import ndtri

__all__ = ["MIN_DRAWS", "rank_diagnostics"]

#: Fewest draws per chain for any of the three (ArviZ's rule).
MIN_DRAWS = 4
#: Elements handled at once: bounds the memory of the FFTs (a chunk of 256 elements of 4 chains x
#: 1000 draws is about 60 MB).
CHUNK = 256
#: Most threads that work on the chunks at once: NumPy's sorts, FFTs and array arithmetic release
#: the GIL, so the chunks run in parallel on the cores a fit has just used for its chains.
MAX_THREADS = 4
#: Tail probabilities of the tail ESS.
TAIL_PROBABILITIES = (0.05, 0.95)


def rank_diagnostics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rhat, ess_bulk, ess_tail)`` of every element of ``values`` (chain, draw, *shape).

    Each result has the shape ``values.shape[2:]``.  See the module docstring.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim < 2:
        raise ValueError(f"values must be (chain, draw, ...); got shape {values.shape}")
    chains, draws = values.shape[:2]
    shape = values.shape[2:]
    flat = np.moveaxis(values.reshape(chains, draws, -1), -1, 0)  # (element, chain, draw)
    rhat = np.full(flat.shape[0], np.nan)
    bulk = np.full(flat.shape[0], np.nan)
    tail = np.full(flat.shape[0], np.nan)
    if draws >= MIN_DRAWS and chains >= 1:
        finite = np.all(np.isfinite(flat), axis=(1, 2))
        # An element whose draws are all equal (a burst that no front has): R-hat 0/0 and every
        # ESS the number of split draws, ArviZ's values, without the ranks and FFTs.
        constant = finite & np.all(flat == flat[:, :1, :1], axis=(1, 2))
        bulk[constant] = tail[constant] = float(chains * 2 * (draws // 2))
        rows = np.flatnonzero(finite & ~constant)
        chunks = [rows[start : start + CHUNK] for start in range(0, len(rows), CHUNK)]

        def run(chunk: np.ndarray) -> None:
            with np.errstate(invalid="ignore", divide="ignore"):
                rhat[chunk], bulk[chunk], tail[chunk] = _chunk_diagnostics(flat[chunk])

        threads = min(len(chunks), _threads())
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(run, chunks))
        else:
            for chunk in chunks:
                run(chunk)
    return rhat.reshape(shape), bulk.reshape(shape), tail.reshape(shape)


def _threads() -> int:
    """Threads for the chunks: the cores this process may use, at most :data:`MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def _chunk_diagnostics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rhat, ess_bulk, ess_tail)`` of (element, chain, draw) finite, non-constant draws.

    The split draws are sorted once: their order gives the bulk ranks, the median of the folded
    draws and, when no draw is left out of the split (an even number a chain), the tail quantiles.
    """
    chains, draws = x.shape[1:]
    split = _split_chains(x)
    pooled = split.reshape(split.shape[0], -1)
    order = np.argsort(pooled, axis=1)
    ordered = np.take_along_axis(pooled, order, axis=1)
    z = _normal_scores(_ranks_of_sorted(ordered, order)).reshape(split.shape)
    rhat = np.full(x.shape[0], np.nan)
    if chains >= 2:
        middle = pooled.shape[1] // 2  # the split draws are 2 x chains x (draws // 2): an even number
        median = (ordered[:, middle - 1] + ordered[:, middle]) / 2.0  # np.median's arithmetic
        bulk, tail = _rhat(z), _rhat(_z_scale(np.abs(split - median[:, None, None])))
        rhat = np.where(tail > bulk, tail, bulk)  # Python's max(bulk, tail), NaN included
    every = ordered if draws % 2 == 0 else np.sort(x.reshape(x.shape[0], -1), axis=1)
    return rhat, _ess(z), _tail_ess(x, every)


def _split_chains(x: np.ndarray) -> np.ndarray:
    """(element, 2 chain, draw // 2): first halves of every chain, then last halves."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half :]], axis=1)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks (1-based) of each row's values, ties given their average rank (``rankdata(method="average")``)."""
    order = np.argsort(x, axis=1)  # ties get their average rank below, whatever their order
    return _ranks_of_sorted(np.take_along_axis(x, order, axis=1), order)


def _ranks_of_sorted(ordered: np.ndarray, order: np.ndarray) -> np.ndarray:
    """:func:`_average_ranks` of rows whose ``argsort`` is ``order`` and sorted values ``ordered``."""
    n_rows, n = ordered.shape
    position = np.broadcast_to(np.arange(n), (n_rows, n))
    starts = np.ones((n_rows, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((n_rows, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, position, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((n_rows, n))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each element over all its (split) draws."""
    return _normal_scores(_average_ranks(x.reshape(x.shape[0], -1))).reshape(x.shape)


def _normal_scores(ranks: np.ndarray) -> np.ndarray:
    r"""Blom's scores :math:`\Phi^{-1}((r - 3/8) / (N + 1/4))` of each row's ranks (N values a row).

    Average ranks are whole or half numbers, so the scores are looked up in a table of the
    :math:`2N + 1` possible ones, computed with the same arithmetic, instead of evaluated draw by draw.
    """
    size = ranks.shape[1]
    halves = np.arange(2 * size + 1) / 2.0
    table = ndtri((halves - 3 / 8) / (size - 2 * 3 / 8 + 1))
    return table[(2.0 * ranks).astype(np.intp)]


def _rhat(x: np.ndarray) -> np.ndarray:
    """Split R-hat of (element, chain, draw) draws (chains already split)."""
    n = x.shape[2]
    chain_mean = x.mean(axis=2)
    within = x.var(axis=2, ddof=1).mean(axis=1)
    between = n * chain_mean.var(axis=1, ddof=1)
    return np.sqrt((between / within + n - 1) / n)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance at every lag along the last axis, by FFT (ArviZ's ``autocov``)."""
    n = x.shape[-1]
    m = next_fast_len(2 * n)
    centred = x - x.mean(axis=-1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=-1)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=m, axis=-1)[..., :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of (element, chain, draw) draws (ArviZ's ``_ess``, not relative), for every element at once."""
    n_rows, n_chain, n_draw = x.shape
    total = n_chain * n_draw
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    acov = _autocov(x)
    mean_var = acov[:, :, 0].mean(axis=1) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + x.mean(axis=2).var(axis=1, ddof=1)
    rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # (element, lag)
    rho[:, 0] = 1.0
    # Pairs (rho[2k], rho[2k + 1]); Geyer's initial positive sequence computes pair k >= 1 while
    # 2k - 1 < n_draw - 3 and the previous pair's sum is positive.
    k_max = max((n_draw - 2 + 1) // 2 - 1, 0)
    pairs = rho[:, 0 : 2 * k_max + 1 : 2] + rho[:, 1 : 2 * k_max + 2 : 2]  # (element, k_max + 1)
    stopped = pairs <= 0.0
    first_stop = np.where(stopped.any(axis=1), np.argmax(stopped, axis=1), k_max)
    k_last = np.minimum(first_stop, k_max)  # pairs 0 .. k_last computed
    running = np.minimum.accumulate(pairs, axis=1)  # initial monotone sequence
    kept = np.arange(k_max + 1)[None, :] < k_last[:, None]
    pair_sum = np.where(kept, running, 0.0).sum(axis=1)
    rows = np.arange(n_rows)
    even = rho[rows, 2 * k_last]
    last_pair = pairs[rows, k_last]
    after = np.where(k_last == 0, 1.0, np.where((last_pair >= 0.0) | (even > 0.0), even, 0.0))
    tau = -1.0 + 2.0 * pair_sum + after
    tau = np.maximum(tau, 1.0 / np.log10(total))
    ess = total / tau
    used = np.arange(rho.shape[1])[None, :] <= 2 * k_last[:, None] + 1
    ess = np.where(np.any(np.isnan(rho) & used, axis=1), np.nan, ess)
    return np.where(constant, float(total), ess)


def _quantile(ordered: np.ndarray, prob: float) -> np.ndarray:
    """Type 7 quantile of each sorted row, with ``scipy.stats.mstats.mquantiles``'s arithmetic (ArviZ's)."""
    n = ordered.shape[1]
    aleph = n * prob + (1.0 - prob)
    k = int(np.floor(np.clip(aleph, 1, n - 1)))
    gamma = float(np.clip(aleph - k, 0, 1))
    return (1.0 - gamma) * ordered[:, k - 1] + gamma * ordered[:, k]


def _tail_ess(x: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Tail ESS of (element, chain, draw) draws, given each element's draws sorted (``ordered``)."""
    low, high = (
        _ess(_split_chains((x <= _quantile(ordered, p)[:, None, None]).astype(float))) for p in TAIL_PROBABILITIES
    )
    return np.where(high < low, high, low)  # Python's min(low, high), NaN included
