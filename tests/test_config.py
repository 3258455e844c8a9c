from __future__ import annotations

from pathlib import Path

import pytest

from copr_lite.config import (
    SETTINGS,
    SIMPLE_SETTINGS,
    Config,
    ConfigError,
    load_config,
    render_config,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "copr-lite.ini"
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    config = load_config(None)
    assert config.host == "127.0.0.1"
    assert config.port == 8080
    assert config.data_dir == Path("data")
    assert config.token_expiration_days == 180
    assert config.public_base_url == "http://127.0.0.1:8080"
    assert config.public_results_url == "http://127.0.0.1:8080/results"
    assert {"fedora-rawhide-x86_64", "fedora-41-x86_64", "epel-9-x86_64"} <= set(config.chroots)


def test_file_values_are_typed(tmp_path):
    path = write(
        tmp_path,
        "[server]\nport = 9000\nbase_url = https://copr.example.org/\naccess_log = off\n"
        "trusted_proxies = 127.0.0.1, 10.0.0.0/8\n"
        "[auth]\ntoken_expiration_days = 30\n"
        "[builds]\nsrpm_allowed_networks = 127.0.0.0/8, 10.0.0.0/8\n"
        "[chroots]\nfedora-41-aarch64 = mock\n"
        "[plugins]\nblocklist = a, b\n[plugin:notify]\nurl = http://x\n",
    )
    config = load_config(path)
    assert config.port == 9000
    assert config.access_log is False
    assert config.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert config.public_base_url == "https://copr.example.org"
    assert config.token_expiration_days == 30
    assert config.srpm_allowed_networks == ("127.0.0.0/8", "10.0.0.0/8")
    assert config.chroots == {"fedora-41-aarch64": "mock"}
    assert config.blocklist == ("a", "b")
    assert config.plugin_settings("notify") == {"url": "http://x"}
    assert config.plugin_settings("other") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "unknown key [server] prot"),
        ("[serve]\nport = 1\n", "unknown section [serve]"),
        ("[server]\nport = eighty\n", "[server] port = 'eighty': expected a whole number"),
        ("[server]\nport = 70000\n", "must be between 1 and 65535"),
        ("[server]\naccess_log = maybe\n", "expected yes/no"),
        ("[server]\nlog_level = LOUD\n", "choose one of DEBUG"),
        ("[server]\nbase_url = ftp://x\n", "expected an http(s) URL"),
        ("[builds]\nsrpm_allowed_networks = 10.0.0.0/33\n", "not a network in CIDR form"),
        ("[server]\ntrusted_proxies = 127.0.0.1, proxy\n", "'proxy' is not a network"),
        ("[auth]\nsignin_failures_per_name = 0\n", "must be between 1 and 10000"),
        ("[chroots]\nfedora41 = mock\n", "must look like <os>-<version>-<arch>"),
        ("[chroots]\nfedora-41-x86_64 = Bad Name\n", "not a valid builder name"),
        ("[server\nport=1\n", "not valid ini"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.ini")


def test_every_setting_is_documented_and_rendered():
    text = render_config(Config())
    for f in SETTINGS:
        assert f.metadata["help"].strip(), f.name
        assert f.metadata["section"]
    for f in SIMPLE_SETTINGS:
        assert f"\n{f.name} = " in "\n" + text, f.name


def test_rendered_config_reads_back_identically(tmp_path):
    config = load_config(None, port=8123)
    assert load_config(write(tmp_path, render_config(config))) == config


def test_shipped_ini_is_valid_and_documents_every_setting():
    shipped = Path(__file__).resolve().parent.parent / "copr-lite.ini"
    load_config(shipped)
    text = shipped.read_text()
    for f in SIMPLE_SETTINGS:
        assert f"{f.name} =" in text, f.name


def test_readme_documents_every_setting():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for f in SIMPLE_SETTINGS:
        assert f"| `{f.name}` |" in readme, f.name
