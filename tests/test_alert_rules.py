"""Alert rules: the rules file, its validation, the rule engine and the replay scoring."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from forecast.alerts.evaluation import KnownChange, evaluate_replay
from forecast.alerts.rules import (
    AlertRules,
    ChangepointRule,
    FrontRules,
    FrontRuleState,
    Signal,
    SurpriseRule,
    alert_id,
    evaluate_front,
    load_rules,
    rules_from_dict,
)
from forecast.errors import RulesConfigError

RULES_FILE = Path(__file__).resolve().parents[1] / "priors" / "alerts" / "rules.yaml"


def test_rules_file_equals_code_defaults():
    assert load_rules(RULES_FILE) == AlertRules()
    assert load_rules(RULES_FILE).hash() == AlertRules().hash()
    assert load_rules(None) == AlertRules()
    assert rules_from_dict(AlertRules().to_dict()) == AlertRules()


def test_a_partial_file_takes_the_defaults_and_fronts_override(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "changepoint: {threshold: 0.8}\n"
        "fronts:\n"
        "  lebanon_drones: {direction: up, cooldown_days: 3, surprise: {enabled: false}}\n",
        encoding="utf-8",
    )
    rules = load_rules(path)
    assert rules.default.changepoint.threshold == 0.8
    assert rules.default.changepoint.within_last == ChangepointRule().within_last
    drones = rules.for_front("lebanon_drones")
    assert drones.direction == "up" and drones.cooldown_days == 3 and not drones.surprise.enabled
    assert drones.changepoint.threshold == 0.8  # overrides start from the file's defaults
    assert rules.for_front("gaza") == rules.default
    assert rules_from_dict(rules.to_dict()) == rules


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("cooldown: 3\n", ["unknown keys ['cooldown']", "cooldown_days", "fronts"]),
        ("direction: sideways\n", ["direction", "'up', 'down', 'both'"]),
        ("changepoint: {threshold: 1.5}\n", ["changepoint.threshold", "<= 1"]),
        ("changepoint: {within_last: 0}\n", ["changepoint.within_last", ">= 1"]),
        ("changepoint: {window: 3}\n", ["unknown keys ['window']", "within_last"]),
        ("surprise: {threshold: 0}\n", ["surprise.threshold", "> 0"]),
        ("surprise: {min_consecutive: 1.0}\n", ["surprise.min_consecutive", "whole number"]),
        ("cooldown_days: -1\n", ["cooldown_days", ">= 0"]),
        ("fronts: {gaza: {fronts: {}}}\n", ["fronts.gaza", "unknown keys ['fronts']"]),
        ("fronts: {gaza: {changepoint: {enabled: yes please}}}\n", ["fronts.gaza.changepoint.enabled"]),
        ("- a list\n", ["expected a mapping"]),
    ],
)
def test_bad_rules_files_are_refused_with_the_file_and_the_allowed_keys(tmp_path, text, needles):
    path = tmp_path / "bad_rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesConfigError) as error:
        load_rules(path)
    message = str(error.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_every_problem_is_listed_at_once(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("direction: x\ncooldown_days: x\nsurprise: {threshold: 2}\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match="3 rules problems"):
        load_rules(path)


def test_rules_files_are_plain_yaml(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("direction: !!python/name:os.system\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match="plain YAML"):
        load_rules(path)
    path.write_text("direction: up\ndirection: down\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match="twice"):
        load_rules(path)


def test_the_shipped_file_lists_every_key():
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    assert data == AlertRules().to_dict()


# --------------------------------------------------------------------------------------------
# The rule engine


def _cp(date: str, prob: float, *, after: float = 10.0, before: float = 2.0, n_obs: int = 100) -> Signal:
    return Signal(
        date=date,
        count=int(after),
        n_obs=n_obs,
        changepoint_prob=prob,
        regime_start=date,
        rate_after=after,
        rate_before=before,
    )


def _days(n: int, start: int = 1) -> list[str]:
    return [f"2024-03-{day:02d}" for day in range(start, start + n)]


def test_changepoint_rule_fires_once_per_shift_with_a_cooldown():
    rules = FrontRules(cooldown_days=7)
    state = FrontRuleState()
    signals = [_cp(d, p) for d, p in zip(_days(10), [0.1, 0.6, 0.9, 0.95, 0.7, 0.2, 0.1, 0.1, 0.8, 0.9], strict=True)]
    alerts = evaluate_front("gaza", rules, state, signals)
    assert [(a.date, a.direction, a.rule) for a in alerts] == [
        ("2024-03-02", "up", "changepoint"),
        ("2024-03-09", "up", "changepoint"),
    ]
    assert alerts[0].probability == 0.6
    assert alerts[0].id == alert_id("gaza", "changepoint", "2024-03-02", "up")
    assert state.last_alert == {"up": "2024-03-09"}


def test_a_lull_and_the_resumption_are_two_alerts_despite_the_cooldown():
    rules = FrontRules(cooldown_days=14)
    signals = [_cp("2024-03-01", 0.9, after=0.0, before=15.0), _cp("2024-03-07", 0.9, after=60.0, before=8.0)]
    alerts = evaluate_front("gaza", rules, FrontRuleState(), signals)
    assert [a.direction for a in alerts] == ["down", "up"]


def test_direction_filter_min_consecutive_and_warmup():
    up_only = FrontRules(direction="up")
    lull = [_cp(d, 0.9, after=0.0, before=5.0) for d in _days(3)]
    assert evaluate_front("f", up_only, FrontRuleState(), lull) == []

    twice = FrontRules(changepoint=ChangepointRule(min_consecutive=2))
    signals = [_cp(d, p) for d, p in zip(_days(5), [0.9, 0.1, 0.9, 0.9, 0.9], strict=True)]
    alerts = evaluate_front("f", twice, FrontRuleState(), signals)
    assert [a.date for a in alerts] == ["2024-03-04"]

    early = [_cp(d, 0.99, n_obs=i + 1) for i, d in enumerate(_days(5))]
    assert evaluate_front("f", FrontRules(changepoint=ChangepointRule(warmup=28)), FrontRuleState(), early) == []


def test_the_streak_survives_between_runs_in_the_rule_state():
    twice = FrontRules(changepoint=ChangepointRule(min_consecutive=2))
    state = FrontRuleState()
    assert evaluate_front("f", twice, state, [_cp("2024-03-01", 0.9)]) == []
    state = FrontRuleState.from_json(state.to_json())
    alerts = evaluate_front("f", twice, state, [_cp("2024-03-02", 0.9)])
    assert [a.date for a in alerts] == ["2024-03-02"]


def test_surprise_rule_both_tails_and_no_draws():
    rules = FrontRules(
        changepoint=ChangepointRule(enabled=False), surprise=SurpriseRule(threshold=0.01), cooldown_days=0
    )
    signals = [
        Signal(
            date="2024-03-01",
            count=50,
            n_obs=100,
            changepoint_prob=0.0,
            p_up=0.002,
            p_down=0.999,
            predictive_median=8.0,
            fit_as_of="2024-02-28",
        ),
        Signal(date="2024-03-02", count=0, n_obs=101, changepoint_prob=0.0, p_up=1.0, p_down=0.004),
        Signal(date="2024-03-03", count=0, n_obs=102, changepoint_prob=0.0),  # outside the draws
        Signal(date="2024-03-04", count=9, n_obs=103, changepoint_prob=0.0, p_up=0.4, p_down=0.7),
    ]
    alerts = evaluate_front("gaza", rules, FrontRuleState(), signals)
    assert [(a.date, a.direction, a.rule, a.probability) for a in alerts] == [
        ("2024-03-01", "up", "surprise", 0.002),
        ("2024-03-02", "down", "surprise", 0.004),
    ]
    payload = alerts[0].to_json("2024-03-01")
    assert list(payload)[:7] == ["id", "front", "date", "direction", "rule", "probability", "as_of"]
    assert payload["fit_as_of"] == "2024-02-28" and payload["predictive_median"] == 8.0


def test_one_alert_per_front_and_direction_when_both_rules_fire_the_same_day():
    rules = FrontRules()
    signal = Signal(
        date="2024-03-01",
        count=50,
        n_obs=100,
        changepoint_prob=0.9,
        regime_start="2024-03-01",
        rate_after=50.0,
        rate_before=5.0,
        p_up=0.001,
        p_down=1.0,
    )
    alerts = evaluate_front("gaza", rules, FrontRuleState(), [signal])
    assert [(a.rule, a.direction) for a in alerts] == [("changepoint", "up")]


# --------------------------------------------------------------------------------------------
# Replay scoring


def test_replay_scoring_delays_and_false_alarms():
    alerts = [
        {"front": "gaza", "date": "2023-11-26", "direction": "down", "rule": "changepoint"},
        {"front": "gaza", "date": "2023-12-01", "direction": "up", "rule": "changepoint"},
        {"front": "gaza", "date": "2024-01-20", "direction": "down", "rule": "changepoint"},
        {"front": "north", "date": "2023-12-05", "direction": "up", "rule": "changepoint"},
    ]
    known = [
        KnownChange("2023-11-24", "gaza", "truce begins", direction="down"),
        KnownChange("2023-12-01", "gaza", "truce ends", direction="up"),
        KnownChange("2023-11-24", "north", "truce begins", direction="down"),
        KnownChange("2024-02-05", "iraq_syria", "lull"),
    ]
    result = evaluate_replay(alerts, known, evaluable_fronts=["gaza", "north"], start="2023-11-01", end="2024-01-29")
    by = {(d["front"], d["date"]): d for d in result.detections}
    assert by[("gaza", "2023-11-24")]["delay_days"] == 2
    assert by[("gaza", "2023-12-01")]["delay_days"] == 0
    assert not by[("north", "2023-11-24")]["detected"]  # an up alert does not detect a lull
    assert [d["front"] for d in result.not_evaluable] == ["iraq_syria"]
    assert result.false_alarms == {"gaza": 1, "north": 1}
    assert result.days == 90
    assert result.false_alarms_per_90_days == {"gaza": 1.0, "north": 1.0, "all": 2.0}
    assert any("MISSED" in line for line in result.lines())
