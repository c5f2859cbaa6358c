from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.config import load_settings
from modelyard.errors import ConfigError


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings = load_settings({"MODELYARD_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.resolved_db_url == f"sqlite:///{tmp_path}/modelyard.db"
    assert settings.resolved_artifact_url == f"{tmp_path}/artifacts"


def test_overrides_win_over_environment(tmp_path: Path) -> None:
    settings = load_settings({"MODELYARD_HOME": "/elsewhere"}, home=tmp_path, db_url="sqlite://")
    assert (settings.home, settings.resolved_db_url) == (tmp_path, "sqlite://")


def test_only_the_environment_given_is_read_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic read the process environment too, case-insensitively: a lower-case
    modelyard_db_url (which the unknown-variable check and the training scripts' filter of
    MODELYARD_* do not see) was used, even when the caller gave an environment of its own."""
    monkeypatch.setenv("modelyard_db_url", "postgresql://user:secret@db/prod")
    monkeypatch.setenv("modelyard_home", "/lower")
    given = load_settings({"MODELYARD_HOME": str(tmp_path)})
    assert (given.home, given.db_url) == (tmp_path, None)
    monkeypatch.delenv("MODELYARD_HOME", raising=False)
    monkeypatch.delenv("MODELYARD_DB_URL", raising=False)
    process = load_settings()
    assert (process.home, process.db_url) == (load_settings({}).home, None)  # the defaults
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
    assert load_settings().home == tmp_path


def test_unknown_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match="MODELYARD_DB_URI"):
        load_settings({"MODELYARD_DB_URI": "sqlite://"})


def test_unknown_override_and_bad_value_are_refused() -> None:
    with pytest.raises(ConfigError, match="homee"):
        load_settings({}, homee="x")
    with pytest.raises(ConfigError, match="db_busy_timeout_s"):
        load_settings({"MODELYARD_DB_BUSY_TIMEOUT_S": "soon"})


@pytest.mark.parametrize(
    "name", ["PLAN_POLL_S", "SERVER_HEARTBEAT_S", "CAPTURE_ROLL_S", "METRICS_FLUSH_S"]
)
def test_an_interval_a_server_would_spin_on_is_refused(name: str) -> None:
    # 1e-9 was taken: every server process would query the store, write its status, roll a
    # file or flush its series in a loop that never rests.
    with pytest.raises(ConfigError, match=name.lower()):
        load_settings({f"MODELYARD_{name}": "1e-9"})
    assert getattr(load_settings({f"MODELYARD_{name}": "0.01"}), name.lower()) == 0.01


def test_labels_must_be_kept_as_long_as_they_are_taken() -> None:
    env = {"MODELYARD_FEEDBACK_MAX_AGE_D": "30", "MODELYARD_FEEDBACK_RETENTION_D": "7"}
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert str(refused.value).startswith(
        "invalid settings: feedback_retention_d (7 days) must be at least a day longer than "
        "feedback_max_age_d (30 days)"
    )
    with pytest.raises(ConfigError, match="at least a day longer"):  # equal is not enough
        load_settings({**env, "MODELYARD_FEEDBACK_RETENTION_D": "30"})
    assert load_settings({**env, "MODELYARD_FEEDBACK_RETENTION_D": "31"}).feedback_retention_d
    with pytest.raises(ConfigError, match="capture_retention_d"):
        load_settings({"MODELYARD_CAPTURE_RETENTION_D": "-1"})


# Settings that become a timedelta or an SQLite timeout: infinity, or a number too large for
# either, ended every command (not only serve) in an OverflowError traceback.
_DURATIONS = {
    "MODELYARD_DB_BUSY_TIMEOUT_S": "86400",
    "MODELYARD_CAPTURE_ROLL_S": "86400",
    "MODELYARD_METRICS_MINUTE_RETENTION_H": "876000",
    "MODELYARD_METRICS_HOUR_RETENTION_D": "36500",
    "MODELYARD_FEEDBACK_MAX_AGE_D": "36500",
}


@pytest.mark.parametrize("variable", sorted(_DURATIONS))
@pytest.mark.parametrize("value", ["inf", "1e300"])
def test_a_duration_too_long_for_a_clock_is_refused_naming_it(variable: str, value: str) -> None:
    setting = variable.removeprefix("MODELYARD_").lower()
    with pytest.raises(ConfigError, match=f"invalid settings: {setting}: .*less than or equal"):
        load_settings({variable: value})


def test_the_longest_durations_taken_build_a_platform(tmp_path: Path) -> None:
    from modelyard.bootstrap import build

    platform = build(load_settings(_DURATIONS, home=tmp_path / "home"))
    platform.close()
    assert platform.settings.capture_roll_s == 86_400


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("https://app.example.com/", "https://app.example.com"),
        ("https://app.example.com/ui/index.html", "https://app.example.com"),
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://localhost:80", "http://localhost"),
        ("app.example.com", None),
        ("localhost:3000", None),
    ],
)
def test_a_cors_origin_no_browser_sends_is_refused(given: str, meant: str | None) -> None:
    """A browser sends its Origin as scheme://host[:port], lower case, no path and no default
    port; an allow-list entry written otherwise matched nothing, and CORS stayed off without a
    word."""
    with pytest.raises(ConfigError) as refused:
        load_settings({"MODELYARD_CORS_ORIGINS": f"https://ok.example.com,{given}"})
    message = str(refused.value)
    assert message.startswith("invalid settings: cors_origins: "), message
    assert repr(given) in message, message
    if meant is not None:
        assert f"use {meant!r}" in message, message


def test_cors_origins_a_browser_sends_are_taken() -> None:
    origins = "*,null,https://app.example.com,http://127.0.0.1:3000,http://[::1]:8000"
    settings = load_settings({"MODELYARD_CORS_ORIGINS": origins})
    assert settings.cors_origin_list == tuple(origins.split(","))
