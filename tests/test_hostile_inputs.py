"""Hostile and damaged input files: every problem is an error naming its line, never a silent loss.

Unterminated quotes, NUL bytes, control characters in names, counts beyond what a float holds
exactly or beyond int64, and front names written in two Unicode forms.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from forecast import names as n
from forecast.data.panel import build_panel
from forecast.data.readers import read_events
from forecast.errors import DataValidationError


def problems(path) -> list[str]:
    with pytest.raises(DataValidationError) as caught:
        read_events([path])
    return [str(issue) for issue in caught.value.issues]


def daily_rows(count: int = 42) -> list[str]:
    return [f"2024-01-{1 + i % 28:02d},front_{i // 28},1" for i in range(count)]


def test_an_unterminated_quote_is_an_error_naming_its_line(write_csv):
    rows = daily_rows()
    rows[4] = '2024-01-05,"front_0,1'  # line 6 of the file: the quote is never closed
    (message,) = problems(write_csv("date,front,count\n" + "\n".join(rows) + "\n"))
    assert "line 6" in message and "unterminated quote" in message


def test_a_stray_character_after_a_closing_quote_is_an_error_naming_its_line(write_csv):
    (message,) = problems(write_csv('date,front,count\n2024-01-01,north,1\n2024-01-02,"north"x,2\n'))
    assert "line 3" in message and "malformed CSV" in message


def test_a_nul_byte_is_an_error_naming_its_line(write_csv):
    (message,) = problems(write_csv("date,front,count\n2024-01-01,north,1\n2024-01-02,north,1\x002\n"))
    assert "line 3" in message and "NUL" in message


def test_control_characters_in_a_front_name_are_an_error_naming_the_line(write_csv):
    path = write_csv('date,front,count\n2024-01-01,north,1\n2024-01-02,"no\nrth",2\n2024-01-03,north,1\n')
    (message,) = problems(path)
    assert "line 3" in message and "U+000A" in message


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("date,front,count\n2024-01-01,north,1\n2024-01-02,Caf\xe9,1\n".encode("latin-1"))
    (message,) = problems(path)
    assert "line 3" in message and "not UTF-8" in message


def test_counts_are_exact_integers_above_two_to_the_53(write_csv):
    big = 2**53 + 1
    events = read_events([write_csv(f"date,front,count\n2024-01-01,north,{big}\n2024-01-02,north,3.0\n")])
    assert events.frame[n.COUNT].tolist() == [big, 3]
    panel = build_panel(events)
    assert panel.period_obs[n.COUNT].tolist() == [big, 3]


def test_a_count_beyond_int64_is_refused_with_its_line(write_csv):
    (message,) = problems(write_csv("date,front,count\n2024-01-01,north,1\n2024-01-02,north,12345678901234567890\n"))
    assert "line 3" in message and "too large" in message


def test_a_daily_total_beyond_int64_is_refused_with_the_line(write_csv):
    nine = 9 * 10**18
    events = read_events([write_csv(f"date,front,count\n2024-01-01,north,{nine}\n2024-01-01,north,{nine}\n")])
    with pytest.raises(DataValidationError) as caught:
        build_panel(events)
    (message,) = [str(issue) for issue in caught.value.issues]
    assert "line 3" in message and "too large" in message


def test_sums_of_counts_are_exact_integers(write_csv):
    big = 2**53
    events = read_events([write_csv(f"date,front,count\n2024-01-01,north,{big}\n2024-01-01,north,1\n")])
    counts = build_panel(events).period_obs[n.COUNT]
    assert counts.dtype == np.int64 and counts.tolist() == [big + 1]


@pytest.mark.parametrize("cell", ["1e3", "-1", "2.5", "x" * 5000])
def test_bad_counts_are_refused_and_echoed_short(write_csv, cell):
    (message,) = problems(write_csv(f"date,front,count\n2024-01-01,north,{cell}\n"))
    assert "line 2" in message and len(message) < 300


def test_front_names_in_two_unicode_forms_are_one_front(write_csv):
    nfc = unicodedata.normalize("NFC", "Café")
    nfd = unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    events = read_events([write_csv(f"date,front,count\n2024-01-01,{nfc},1\n2024-01-01,{nfd},2\n")])
    assert events.fronts == [nfc]
    assert build_panel(events).period_obs[n.COUNT].tolist() == [3]
    assert any("line" in str(w) and "Unicode" in str(w) for w in events.warnings)


# --------------------------------------------------------------------------------------------
# YAML rules and detector files


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    + ["changepoint: *i"]
)


def test_a_yaml_alias_bomb_is_refused_before_it_is_built(tmp_path):
    import tracemalloc

    from forecast.alerts.rules import load_rules
    from forecast.errors import RulesConfigError

    path = tmp_path / "rules.yaml"
    path.write_text(ALIAS_BOMB + "\n", encoding="utf-8")
    assert len(ALIAS_BOMB) < 450
    tracemalloc.start()
    with pytest.raises(RulesConfigError) as caught:
        load_rules(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "expands to over 100,000 values" in str(caught.value)
    assert len(str(caught.value)) < 1500 and peak < 5_000_000


def test_a_huge_value_in_a_rules_file_is_echoed_cut_short(tmp_path):
    from forecast.alerts.rules import load_rules
    from forecast.errors import RulesConfigError

    path = tmp_path / "rules.yaml"
    path.write_text("cooldown_days: [" + ", ".join(["123456789"] * 50_000) + "]\n", encoding="utf-8")
    with pytest.raises(RulesConfigError) as caught:
        load_rules(path)
    assert "cooldown_days" in str(caught.value) and len(str(caught.value)) < 500


def test_data_check_totals_are_exact_beyond_int64(write_csv):
    from forecast.jobs.data import DataRequest, check_data, format_check

    half = 2**62
    path = write_csv(f"date,front,count\n2024-01-01,north,{half}\n2024-01-02,north,{half}\n2024-01-02,south,1\n")
    result = check_data(DataRequest(events=(path,)))
    assert result["errors"] == []
    assert [(f["front"], f["total"], f["rows"]) for f in result["fronts"]] == [("north", 2**63, 2), ("south", 1, 1)]
    assert f"total events: {2**63 + 1}" in format_check(result)
