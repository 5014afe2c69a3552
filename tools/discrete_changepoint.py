r"""The escalation model with a *sampled* (discrete) changepoint position: for benchmarks only.

Why this exists
---------------
The default model (:func:`forecast.models.escalation.build_escalation_model`) sums the
changepoint positions out exactly (:mod:`forecast.models.changepoints`), so that NUTS samples
only continuous parameters and the posterior of the dates follows per draw.  The textbook
alternative keeps the position as a discrete parameter and samples it with Metropolis inside
a compound step (NUTS for everything else).  This module builds that alternative, with the
same parameters, priors and observation likelihood, so that ``benchmarks/bench_models.py``
can measure what the marginalisation buys (effective samples per second of the continuous
parameters, and the mixing of the dates themselves).  Nothing in the fitting path uses it, so it
lives in ``tools/``, outside the ``forecast`` package.

Maths
-----
One changepoint per front (:math:`K = 1`).  Observations of front :math:`f` in date order
have positions :math:`s = 0 .. N_f - 1`; the design allows the changepoint at the contiguous
range :math:`[\mathrm{lo}_f, \mathrm{hi}_f]` of ``Design.changepoint_valid[f]`` (at least
``min_regime_days`` observed days on either side).  With :math:`\ell_r[i]` the log-likelihood
of observation :math:`i` under regime :math:`r` (:func:`~forecast.models.escalation.regime_loglik`:
regime 1 adds the front's jump to the log mean),

.. math::

    \tau_f &\sim \operatorname{DiscreteUniform}(\mathrm{lo}_f, \mathrm{hi}_f) \\
    \log p(y \mid \theta, \tau) &= \sum_f \Big(\sum_{s < \tau_f} \ell_0[i_f(s)]
        + \sum_{s \ge \tau_f} \ell_1[i_f(s)]\Big),

i.e. an observation is in regime 1 when its position within its front is at least
:math:`\tau_f`.  Its prior :math:`1 / (\mathrm{hi}_f - \mathrm{lo}_f + 1)` is the uniform
prior over the :math:`\binom{n_f}{1} = n_f` valid positions of the marginalised model, whose
likelihood is exactly

.. math::

    \log p(y \mid \theta) = \sum_f \Big(\operatorname{LSE}_{\tau_f}
        \log p_f(y \mid \theta, \tau_f) - \log n_f\Big),

so both formulations have the same posterior of :math:`(\theta, \tau)`; they differ only in
how well a sampler explores it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc_extras.prior import Prior

from forecast import names as n
from forecast.models.design import Design
from forecast.models.escalation import coords_of, regime_loglik

#: The discrete changepoint position, one per front (an index into the front's observations).
POSITION_VARIABLE = "changepoint_position"
#: The potential holding the log-likelihood given the sampled positions.
LOGLIK_POTENTIAL = "discrete_loglik"


def changepoint_range(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` per front: the first and last position where the changepoint may fall.

    Raises
    ------
    ValueError
        When a front has no valid position or its valid positions are not contiguous.
    """
    valid = np.asarray(design.changepoint_valid, dtype=bool)
    lo = np.zeros(valid.shape[0], dtype=np.int64)
    hi = np.zeros(valid.shape[0], dtype=np.int64)
    for f, row in enumerate(valid):
        where = np.flatnonzero(row)
        if len(where) == 0:
            raise ValueError(f"front {design.fronts[f]!r} has no valid changepoint position")
        if where[-1] - where[0] + 1 != len(where):
            raise ValueError(f"the valid changepoint positions of front {design.fronts[f]!r} are not contiguous")
        lo[f], hi[f] = where[0], where[-1]
    return lo, hi


def observation_positions(design: Design) -> np.ndarray:
    """``(obs,)`` the position of each observation within its front (0 = its first)."""
    out = np.zeros(design.n_obs, dtype=np.int64)
    fronts, positions = np.nonzero(design.position_mask)
    out[design.position[fronts, positions]] = positions
    return out


def build_discrete_changepoint_model(design: Design, priors: Mapping[str, Prior]) -> pm.Model:
    """Build the comparison model: one changepoint per front, its position sampled.

    ``pm.sample`` on this model assigns a compound step: NUTS for the continuous parameters
    and Metropolis for ``changepoint_position``.

    Parameters
    ----------
    design : Design
        From :func:`forecast.models.design.build_design`, with ``options.changepoints == 1``.
    priors : mapping of name to ``pymc_extras.prior.Prior``
        As for :func:`forecast.models.escalation.build_escalation_model`.

    Raises
    ------
    ValueError
        When the design does not have exactly one changepoint per front.
    """
    k = design.options.changepoints
    if k != 1:
        raise ValueError(f"the discrete-changepoint model supports exactly one changepoint per front, got K={k}")
    lo, hi = changepoint_range(design)
    obs_position = observation_positions(design)
    with pm.Model(coords=coords_of(design)) as model:
        loglik = regime_loglik(design, priors)  # (regime, obs)
        position = pm.DiscreteUniform(POSITION_VARIABLE, lower=lo, upper=hi, dims=n.FRONT)
        after = pt.ge(obs_position, position[design.obs_front])
        pm.Potential(LOGLIK_POTENTIAL, pt.switch(after, loglik[1], loglik[0]).sum())
    return model
