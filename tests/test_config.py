from __future__ import annotations

import dataclasses
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from copr_lite.config import (
    SETTINGS,
    SIMPLE_SETTINGS,
    Config,
    ConfigError,
    PluginSettingsRegistry,
    load_config,
    parse_plugin_settings,
    plugin_setting,
    render_config,
    setting_key,
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
    # Kept as text until the plugins that declare them are loaded (see below).
    assert config.plugin_sections == {"notify": {"url": "http://x"}}


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


# ---------------------------------------------------------------- plugin settings


@dataclass(frozen=True)
class NotifySettings:
    url: str = plugin_setting("", "Where to send notifications.")
    retries: int = plugin_setting(3, "Attempts per notification.", min=1, max=10)
    timeout: float = plugin_setting(2.5, "Seconds per attempt.", min=0.1)
    verbose: bool = plugin_setting(False, "Log every notification.")
    level: str = plugin_setting("info", "How loud.", choices=("info", "warning"))
    headers: dict[str, str] = plugin_setting(  # noqa: RUF009  (a field with a default factory)
        {}, "One HTTP header per key.", key="header.<name>"
    )

    def __post_init__(self) -> None:
        if self.verbose and not self.url:
            raise ValueError("verbose = yes needs a url")


def test_plugin_settings_are_typed_with_defaults():
    config = load_config(
        None,
        plugin_sections={
            "notify": {
                "url": " http://x ",
                "retries": "5",
                "timeout": "",  # empty: the default
                "verbose": "on",
                "level": "WARNING",
                "header.X-Token": "abc",
            }
        },
    )
    settings = config.plugin_settings("notify", NotifySettings)
    assert settings == NotifySettings("http://x", 5, 2.5, True, "warning", {"X-Token": "abc"})
    assert load_config(None).plugin_settings("notify", NotifySettings) == NotifySettings()
    assert NotifySettings().headers is not NotifySettings().headers


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"urll": "x"}, "unknown key [plugin:notify] urll (known: url, retries, timeout, "),
        ({"header.": "x"}, "unknown key [plugin:notify] header."),
        ({"retries": "many"}, "[plugin:notify] retries = 'many': expected a whole number"),
        ({"retries": "11"}, "[plugin:notify] retries = 11: must be between 1 and 10"),
        ({"timeout": "0"}, "[plugin:notify] timeout = 0: must be at least 0.1"),
        ({"timeout": "nan"}, "[plugin:notify] timeout = 'nan': expected a finite number"),
        ({"verbose": "maybe"}, "[plugin:notify] verbose = 'maybe': expected yes/no"),
        ({"level": "loud"}, "[plugin:notify] level = 'loud': choose one of info, warning"),
        ({"verbose": "yes"}, "[plugin:notify] verbose = yes needs a url"),
    ],
)
def test_bad_plugin_settings_name_the_problem(raw, message):
    with pytest.raises(ConfigError) as info:
        parse_plugin_settings("notify", NotifySettings, raw)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_plugin_sections_are_declared_or_refused():
    registry = PluginSettingsRegistry()
    registry.add("notify", NotifySettings)
    registry.validate(load_config(None, plugin_sections={"notify": {"url": "http://x"}}))
    with pytest.raises(ConfigError, match=r"unknown key \[plugin:notify\] ur "):
        registry.validate(load_config(None, plugin_sections={"notify": {"ur": "x"}}))
    with pytest.raises(
        ConfigError,
        match=r"^unknown section \[plugin:notfy\]: no plugin declares it "
        r"\(declared: \[plugin:notify\]\)$",
    ):
        registry.validate(load_config(None, plugin_sections={"notfy": {}}))
    # The section of a blocked plugin is not read: the plugin is off.
    registry.validate(load_config(None, plugin_sections={"off": {"x": "1"}}, blocklist=("off",)))
    text = render_config(load_config(None), registry)
    assert "[plugin:notify]\n# Where to send notifications.\nurl = \n" in text
    assert "# header.<name> = \n" in text and "timeout = 2.5\n" in text


class NoHelp:
    pass


@pytest.mark.parametrize(
    ("name", "cls", "message"),
    [
        ("Bad Name", NotifySettings, "not a valid plugin section name"),
        ("notify", NoHelp, "is not a dataclass"),
    ],
)
def test_bad_declarations_are_refused(name, cls, message):
    registry = PluginSettingsRegistry()
    with pytest.raises((TypeError, ValueError), match=message):
        registry.add(name, cls)


def test_declarations_need_help_and_known_types():
    @dataclass(frozen=True)
    class Helpless:
        x: int = 1

    @dataclass(frozen=True)
    class Listy:
        x: tuple[str, ...] = plugin_setting((), "A tuple.")

    @dataclass(frozen=True)
    class KeylessDict:
        x: dict[str, str] = plugin_setting({}, "A dict.")  # noqa: RUF009

    registry = PluginSettingsRegistry()
    registry.add("notify", NotifySettings)
    with pytest.raises(ValueError, match=r"\[plugin:notify\] is already declared"):
        registry.add("notify", NotifySettings)
    with pytest.raises(TypeError, match=r"Helpless\.x: no help text"):
        registry.add("a", Helpless)
    with pytest.raises(TypeError, match=r"Listy\.x: type tuple\[str, \.\.\.\] is not one of"):
        registry.add("b", Listy)
    with pytest.raises(TypeError, match=r"KeylessDict\.x: a dict"):
        registry.add("c", KeylessDict)


def builtin_plugin_settings():
    """(section, key, help) of every setting the built-in plugins declare."""
    from copr_lite.plugins import load_plugins

    registry = load_plugins(load_config(None), (), False).settings
    for name in registry.names():
        cls = registry.get(name)
        assert cls is not None
        for f in dataclasses.fields(cls):
            yield name, setting_key(f), f.metadata["help"]


def test_every_builtin_plugin_setting_is_documented():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    shipped = (root / "copr-lite.ini").read_text()
    settings = list(builtin_plugin_settings())
    assert {name for name, _, _ in settings} == {
        "container",
        "mock",
        "remote",
        "rpmbuild",
        "webhooks",
    }
    for name, key, help_text in settings:
        assert help_text.strip()
        assert f"| plugin:{name} | `{key}` |" in readme, (name, key)
        assert f"# {key} =" in shipped.split(f"[plugin:{name}]", 1)[1], (name, key)


def test_readme_plugin_settings_example_runs():
    """The example in README's "Plugin settings" is a working plugin."""
    from copr_lite.plugins import load_plugins

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Plugin settings", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    module = types.ModuleType("readme_notify")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    try:
        exec(compile(code, "README.md", "exec"), module.__dict__)
        raw = {"url": "http://hook.example", "header.X-Token": "t", "retries": "2"}
        config = load_config(None, plugin_sections={"notify": raw}, chroots={})
        load_plugins(config, [module], False)
        settings = config.plugin_settings("notify", module.NotifySettings)
        assert (settings.url, settings.retries, settings.headers) == (
            "http://hook.example",
            2,
            {"X-Token": "t"},
        )
    finally:
        del sys.modules[module.__name__]


def test_tls_settings_are_checked_at_startup(tmp_path):
    with pytest.raises(ConfigError, match="set both"):
        load_config(None, tls_cert=str(tmp_path / "cert.pem"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(None, tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "k.pem"))
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "k.pem").write_text("not a key\n")
    with pytest.raises(ConfigError, match="not a usable PEM"):
        load_config(None, tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "k.pem"))
    assert load_config(None).public_base_url.startswith("http://")
