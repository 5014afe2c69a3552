"""State and outputs of the daily changepoint detector (:mod:`forecast.alerts.bocpd`).

A front's state is its run-length distribution (``R + 1`` probabilities) and the sums of its
last ``r`` counts for every ``r`` (``R + 1`` integers), plus the number of observations seen:
:meth:`DetectorState.front_bytes` serialises it exactly (float64), so a run that resumes from
saved state computes the same numbers as one that never stopped.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.alerts.detector_config import DetectorConfig

__all__ = ["DetectorOutput", "DetectorState"]

_MAGIC = b"BOCPD\x01"  # float64 and int64 bytes as they are (still read)
_MAGIC_COMPACT = b"BOCPD\x02"  # byte-shuffled and deflated (written)
_HEADER = struct.Struct("<6sqq")


@dataclass
class DetectorState:
    """Run-length distributions of several fronts (mutable: :func:`update` advances it in place).

    Attributes
    ----------
    probs : numpy.ndarray, shape (front, R + 1)
        ``probs[f, r]``: probability that the current regime holds the last ``r`` observations
        (slot ``R``: ``R`` or more).  Slot 0 is used only before the first observation.
    sums : numpy.ndarray of int64, shape (front, R + 1)
        ``sums[f, r]``: sum of the last ``r`` counts.
    n_obs : numpy.ndarray of int64, shape (front,)
        Observations processed.
    """

    probs: np.ndarray
    sums: np.ndarray
    n_obs: np.ndarray

    @classmethod
    def initial(cls, n_fronts: int, config: DetectorConfig) -> DetectorState:
        """Before any observation: all mass on run length 0."""
        size = config.max_run_length + 1
        probs = np.zeros((n_fronts, size))
        probs[:, 0] = 1.0
        return cls(
            probs=probs, sums=np.zeros((n_fronts, size), dtype=np.int64), n_obs=np.zeros(n_fronts, dtype=np.int64)
        )

    @property
    def n_fronts(self) -> int:
        return int(self.probs.shape[0])

    @property
    def max_run_length(self) -> int:
        return int(self.probs.shape[1] - 1)

    def front_bytes(self, index: int) -> bytes:
        """One front's state, exactly, compressed (about a third of the 16 bytes a slot).

        The probabilities (float64) and the differences of the window sums (int64: the counts
        themselves, small numbers) are byte-shuffled (the k-th bytes of all values together)
        and deflated; :meth:`from_front_bytes` restores them bit for bit.
        """
        header = _HEADER.pack(_MAGIC_COMPACT, self.max_run_length, int(self.n_obs[index]))
        probs = np.ascontiguousarray(self.probs[index], dtype="<f8")
        steps = np.diff(np.ascontiguousarray(self.sums[index], dtype="<i8"), prepend=np.int64(0)).astype("<i8")
        body = np.concatenate([probs.view("<i8"), steps])
        return header + zlib.compress(np.ascontiguousarray(body.view(np.uint8).reshape(-1, 8).T).tobytes(), 1)

    @classmethod
    def from_front_bytes(cls, blobs: Sequence[bytes], config: DetectorConfig) -> DetectorState:
        """Stack the states of several fronts, as written by :meth:`front_bytes`.

        Raises
        ------
        ValueError
            When a blob is not a detector state of this configuration's size.
        """
        size = config.max_run_length + 1
        probs = np.zeros((len(blobs), size))
        sums = np.zeros((len(blobs), size), dtype=np.int64)
        n_obs = np.zeros(len(blobs), dtype=np.int64)
        for i, blob in enumerate(blobs):
            if len(blob) < _HEADER.size:
                raise ValueError(f"detector state of {len(blob)} bytes is too short")
            magic, stored_r, count = _HEADER.unpack_from(blob)
            if magic not in (_MAGIC, _MAGIC_COMPACT):
                raise ValueError("not a detector state")
            if stored_r != size - 1:
                raise ValueError(f"detector state of max_run_length {stored_r} does not fit max_run_length {size - 1}")
            body = blob[_HEADER.size :]
            if magic == _MAGIC_COMPACT:
                try:
                    shuffled = zlib.decompress(body)
                except zlib.error as error:
                    raise ValueError(f"damaged detector state: {error}") from error
                if len(shuffled) != 16 * size:
                    raise ValueError(f"detector state of {len(shuffled)} bytes does not fit max_run_length {size - 1}")
                values = np.frombuffer(shuffled, dtype=np.uint8).reshape(8, -1).T.copy().view("<i8").ravel()
                probs[i] = values[:size].view("<f8")
                sums[i] = np.cumsum(values[size:])
            else:
                if len(body) != 16 * size:
                    raise ValueError(f"detector state of {len(blob)} bytes does not fit max_run_length {size - 1}")
                probs[i] = np.frombuffer(body[: 8 * size], dtype="<f8")
                sums[i] = np.frombuffer(body[8 * size :], dtype="<i8")
            n_obs[i] = count
        return cls(probs=probs, sums=sums, n_obs=n_obs)


@dataclass(frozen=True)
class DetectorOutput:
    """What :func:`update` reports for each front and step (``shape (front, step)``).

    Attributes
    ----------
    observed : bool
        False where the count was missing (the state did not move).
    changepoint_prob : float
        ``P(r_t <= k)``: probability that a regime started within the last ``k`` observations
        (``k = within_last``); NaN where not observed.
    run_length : int
        Where ``changepoint_prob >= report_above``: the most probable run length ``r* <= k``
        (the regime started ``r* - 1`` observations before this one); 0 elsewhere.
    rate_after, rate_before : float
        Where ``run_length > 0``: mean count of the last ``r*`` observations, and of the up to
        ``baseline`` observations before them (NaN when there are none); NaN elsewhere.
    n_obs : int
        Observations processed by the end of the step.
    """

    observed: np.ndarray
    changepoint_prob: np.ndarray
    run_length: np.ndarray
    rate_after: np.ndarray
    rate_before: np.ndarray
    n_obs: np.ndarray
