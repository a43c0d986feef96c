"""Settings: the shipped YAML equals the built-in defaults; env and files override; errors name the key."""

from __future__ import annotations

import pytest
import yaml

from appliance.settings import DEFAULTS_FILE, Settings, SettingsError, load_settings


def test_shipped_yaml_documents_exactly_the_defaults():
    shipped = yaml.safe_load(DEFAULTS_FILE.read_text())
    assert Settings(**shipped).model_dump() == Settings().model_dump()


def test_precedence_defaults_file_env(tmp_path, monkeypatch):
    user = tmp_path / "mine.yaml"
    user.write_text("server:\n  port: 9000\n  workers: 4\n")
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "9100")
    s = load_settings(user)
    assert (s.server.port, s.server.workers, s.server.host) == (9100, 4, "127.0.0.1")


@pytest.mark.parametrize(
    ("yaml_text", "env", "fragments"),
    [
        ("server:\n  port: 0\n", {}, ["server.port", "greater than or equal to 1"]),
        ("server:\n  prot: 80\n", {}, ["server.prot", "not a known setting"]),
        ("", {"APPLIANCE_LOGGING__LEVEL": "LOUD"}, ["logging.level", "APPLIANCE_LOGGING__LEVEL"]),
        ("- just\n- a list\n", {}, ["must hold a mapping"]),
        ("server: [\n", {}, ["not valid YAML"]),
    ],
)
def test_errors_name_the_key_and_the_fix(tmp_path, monkeypatch, yaml_text, env, fragments):
    user = tmp_path / "bad.yaml"
    user.write_text(yaml_text)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as info:
        load_settings(user)
    for f in fragments:
        assert f in str(info.value)


def test_missing_user_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings(tmp_path / "absent.yaml")
