"""eucalyptus.conf is read as the shell would, the environment overrides it, and a bad value
is reported with its key."""

from pathlib import Path

import pytest

from services.config import ConfigError, load_config, read_conf_file

ROOT = Path(__file__).resolve().parents[3]


def test_the_example_file_is_valid(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EUCASIM_CONF", str(ROOT / "deploy" / "eucalyptus.conf.example"))
    config = load_config()
    assert config.SCHEDPOLICY == "ROUNDROBIN" and config.MAX_CORES == 16
    assert config.nodes == ["http://node1:8775"]


def test_file_values_quotes_comments_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "eucalyptus.conf"
    conf.write_text('# a comment\nMAX_CORES="32"\nexport SCHEDPOLICY=GREEDY  # trailing\n'
                    "ZONES='zone-a zone-b'\n\n")
    monkeypatch.setenv("EUCASIM_CONF", str(conf))
    monkeypatch.delenv("MAX_CORES", raising=False)
    config = load_config()
    assert (config.MAX_CORES, config.SCHEDPOLICY, config.zones) == (32, "GREEDY", ["zone-a", "zone-b"])
    monkeypatch.setenv("MAX_CORES", "64")
    assert load_config().MAX_CORES == 64


@pytest.mark.parametrize("line, key", [('MAX_CORES="many"', "MAX_CORES"),
                                       ('SCHEDPOLICY="FASTEST"', "SCHEDPOLICY"),
                                       ('CLC_PORT="70000"', "CLC_PORT"),
                                       ('LOG_LEVEL="LOUD"', "LOG_LEVEL")])
def test_a_bad_value_names_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, key: str):
    conf = tmp_path / "eucalyptus.conf"
    conf.write_text(line + "\n")
    monkeypatch.setenv("EUCASIM_CONF", str(conf))
    monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match=key):
        load_config()


def test_a_line_that_is_not_key_value_is_reported_with_its_number(tmp_path: Path):
    conf = tmp_path / "eucalyptus.conf"
    conf.write_text('MAX_CORES="2"\nthis is not a setting\n')
    with pytest.raises(ConfigError, match=":2:"):
        read_conf_file(conf)


def test_database_url_is_per_service(tmp_path: Path):
    config = load_config(EUCASIM_HOME=tmp_path)
    assert config.database_url("clc") == f"sqlite:///{tmp_path}/clc.db"
    assert config.database_url("walrus") != config.database_url("clc")
