"""Scratch: `forecast fit` with the graph's data as shared variables (as the backtest builds it)."""

from forecast.models import model as m

_init = m.EscalationModel.__init__


def init(self, *args, **kwargs):
    kwargs.setdefault("shared_data", True)
    _init(self, *args, **kwargs)


m.EscalationModel.__init__ = init
from forecast.cli import run  # noqa: E402

run()
