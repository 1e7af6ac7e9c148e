from pathlib import Path

import pytest

from pipeline.settings import ModelSettings, SettingsError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "T2S_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./trace2skill.toml unless a test writes one


def test_defaults_are_offline():
    s = ModelSettings.resolve()
    assert s.offline and s.model == "offline" and s.concurrency == 16 and s.temperature == 0.0


def test_precedence_cli_over_file_over_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("T2S_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert ModelSettings.resolve().model == "env-model"
    file = tmp_path / "other.toml"
    file.write_text(
        '[model]\nmodel = "file-model"\nconcurrency = 3\n[model.prices]\n"file-model" = [1.0, 2.0]\n'
    )
    s = ModelSettings.resolve(settings_file=file)
    assert (s.model, s.concurrency, s.base_url) == ("file-model", 3, "http://env/v1")
    assert s.prices == {"file-model": (1.0, 2.0)}
    s = ModelSettings.resolve(settings_file=file, model="cli-model", concurrency=None)
    assert (s.model, s.concurrency) == ("cli-model", 3)
    assert s.api_key == "sk-env"


def test_default_settings_file_is_read_from_the_working_directory(tmp_path: Path):
    (tmp_path / "trace2skill.toml").write_text('[model]\nmodel = "m"\ntemperature = 0.5\n')
    s = ModelSettings.resolve()
    assert (s.model, s.temperature) == ("m", 0.5)


def test_api_key_is_never_dumped_or_shown():
    s = ModelSettings.resolve(model="m", api_key="sk-secret-123")
    assert s.api_key == "sk-secret-123"
    assert "sk-secret" not in repr(s) and "sk-secret" not in str(s.public())
    assert "sk-secret" not in s.model_dump_json()


def test_bad_settings_name_their_origin(tmp_path: Path):
    with pytest.raises(SettingsError, match="does not exist"):
        ModelSettings.resolve(settings_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nconcurrency = "lots"\nmodle = "typo"\n')
    with pytest.raises(SettingsError, match=r"modle \(from .*bad.toml\)"):
        ModelSettings.resolve(settings_file=bad)
    bad.write_text('[model]\nconcurrency = "lots"\n')
    with pytest.raises(SettingsError, match=r"concurrency \(from .*bad.toml\)"):
        ModelSettings.resolve(settings_file=bad)
    bad.write_text("[model\n")
    with pytest.raises(SettingsError, match="cannot read settings file"):
        ModelSettings.resolve(settings_file=bad)
    with pytest.raises(SettingsError, match=r"temperature \(from the command line\)"):
        ModelSettings.resolve(temperature=5.0)


def test_a_model_without_key_or_server_fails_before_any_call():
    from pipeline.llm import LLM

    with pytest.raises(SettingsError, match="needs an API key"):
        LLM(ModelSettings.resolve(model="gpt-4o-mini"))
    # A local server needs no key; "offline" needs nothing at all.
    assert LLM(ModelSettings.resolve(model="m", base_url="http://127.0.0.1:1/v1")).transport
    assert LLM(ModelSettings.resolve()).transport is None
