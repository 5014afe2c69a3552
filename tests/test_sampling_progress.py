"""Sampling progress reaches the log when no terminal shows nutpie's bar (a scheduled job)."""

from __future__ import annotations

import sys

import numpy as np
import pymc as pm
import pytest

from forecast.models.numba_digamma import register_cacheable_digamma
from forecast.models.nutpie_compile import compile_nutpie_model
from forecast.models.sampling_progress import Progress, ProgressLog, logged_progress, wants_logged_progress

nutpie = pytest.importorskip("nutpie")


def test_progress_reads_draws_divergences_and_tuning():
    progress = Progress.parse("1200 9000 3:false 1:true")
    assert progress == Progress(finished=1200, total=9000, divergences=4, tuning=True)
    assert not Progress.parse("9000 9000 0:false 0:false").tuning


def test_a_line_at_every_tenth_of_the_draws_with_time_left():
    lines: list[str] = []
    seconds = iter([0.0, 7.0, 20.0])  # read at the start and for each line only
    report = ProgressLog(emit=lines.append, clock=lambda: next(seconds))
    report("0 1000 0:true 0:true")  # nothing yet
    report("50 1000 0:true 0:true")  # 5%: nothing yet
    report("350 1000 1:false 0:false")  # 35% at 7 s: one line for the tenths passed
    report("1000 1000 1:false 1:false")  # done at 20 s
    assert lines == [
        "sampling: 35% (350 of 1,000 draws, tuning included), 1 divergence, 7 s elapsed, about 13 s left",
        "sampling: 100% (1,000 of 1,000 draws, tuning included), 2 divergences, 20 s elapsed",
    ]


def test_an_unreadable_report_is_skipped_not_fatal():
    lines: list[str] = []
    report = ProgressLog(emit=lines.append, clock=lambda: 0.0)
    report("garbled")
    report("")
    assert lines == []


def test_progress_goes_to_the_log_only_without_a_terminal(monkeypatch):
    class Stream:
        def __init__(self, tty: bool):
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.setattr(sys, "stderr", Stream(tty=False))
    assert wants_logged_progress(True)
    assert not wants_logged_progress(False)
    monkeypatch.setattr(sys, "stderr", Stream(tty=True))
    assert not wants_logged_progress(True)


def test_nutpie_reports_through_the_template_and_is_restored_afterwards():
    register_cacheable_digamma()
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=3)
    compiled = compile_nutpie_model(model)
    reports: list[str] = []
    sample_module = sys.modules["nutpie.sample"]
    lib = sample_module._lib
    with logged_progress(cores=2, callback=reports.append):
        trace = nutpie.sample(compiled, draws=200, tune=100, chains=2, cores=2, seed=1, progress_bar=True)
    assert sample_module._lib is lib
    assert trace.posterior["x"].shape == (2, 200, 3)
    assert reports, "nutpie never called the progress callback"
    parsed = [Progress.parse(text) for text in reports]
    assert {progress.total for progress in parsed} == {2 * 300}
    assert all(0 <= progress.finished <= 600 for progress in parsed)
    assert np.all(np.diff([progress.finished for progress in parsed]) >= 0)
