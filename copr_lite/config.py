"""Settings: declared once (name, section, type, default, help), read from copr-lite.ini.

Every setting is a field of the frozen `Config` dataclass; its section and help text live in the
field's metadata, so the table below is the only place a setting is declared. `load_config()`
parses an ini file, rejects unknown sections and keys by name, converts and range-checks every
value, and returns a `Config`. Problems raise `ConfigError` with one line for the operator.

Plugins declare their own `[plugin:NAME]` sections the same way (`plugin_setting()` fields of a
dataclass, registered in `PluginSettingsRegistry`); `load_config()` keeps those sections as
text, and `PluginSettingsRegistry.validate()` checks them once the plugins are loaded.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import re
import shutil
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from .builders import Chroot
from .repos import check_entry, default_distribution_repos

CHROOT_RE = re.compile(r"^[a-z][a-z0-9_.]*-[A-Za-z0-9_.]+-[a-z0-9_]+$")
BUILDER_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """A configuration problem, worded for the operator (one line)."""


def _setting(section: str, default: Any, help: str, **checks: Any) -> Any:
    return field(default=default, metadata={"section": section, "help": help, **checks})


def default_builder() -> str:
    """The builder that serves the default chroots: mock where installed, else rpmbuild."""
    return "mock" if shutil.which("mock") else "rpmbuild"


def default_chroots() -> dict[str, str]:
    builder = default_builder()
    names = ("fedora-rawhide-x86_64", "fedora-41-x86_64", "fedora-40-x86_64", "epel-9-x86_64")
    return {name: builder for name in names}


class _InDataDir:
    """A read-only attribute of a Config: the path of `name` in its data directory."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, config: Config, owner: type[Config]) -> Path:
        return config.data_dir / self.name


@dataclass(frozen=True)
class Config:
    # [server]
    host: str = _setting("server", "127.0.0.1", "Address the HTTP server listens on.")
    port: int = _setting("server", 8080, "TCP port the HTTP server listens on.", min=1, max=65535)
    base_url: str = _setting(
        "server",
        "",
        "Public URL of this server (no trailing slash), used in the API docs page and "
        "~/.config/copr. Empty: http://<host>:<port>.",
        url=True,
    )
    results_url: str = _setting(
        "server",
        "",
        "Public URL of the published results tree. Empty: <base_url>/results.",
        url=True,
    )
    data_dir: Path = _setting(  # noqa: RUF009  (a Path default is immutable)
        "server", Path("data"), "Directory holding the SQLite database and all build data."
    )
    log_level: str = _setting(
        "server", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR.", choices=LOG_LEVELS
    )
    access_log: bool = _setting("server", True, "Write one log line per HTTP request.")
    trusted_proxies: tuple[str, ...] = _setting(
        "server",
        (),
        "Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For header "
        "names the client. Empty: the connecting address is the client.",
        networks=True,
    )
    tls_cert: str = _setting(
        "server",
        "",
        "PEM file of the certificate chain to serve HTTPS with (with tls_key). Empty: plain "
        "HTTP (put a TLS-terminating reverse proxy in front).",
    )
    tls_key: str = _setting(
        "server", "", "PEM file of the private key of tls_cert. Empty: plain HTTP."
    )
    min_free_disk_mb: int = _setting(
        "server",
        1024,
        "MiB of free space the data directory's file system must keep; below it /healthz "
        "answers 503.",
        min=0,
        max=10_000_000,
    )
    # [auth]
    token_expiration_days: int = _setting(
        "auth", 180, "Days an API token stays valid after it is generated.", min=1, max=3650
    )
    session_days: int = _setting("auth", 14, "Days a web sign-in session lasts.", min=1, max=365)
    failure_window: int = _setting(
        "auth",
        300,
        "Seconds over which failed sign-ins and wrong API credentials are counted.",
        min=1,
        max=86400,
    )
    signin_failures_per_name: int = _setting(
        "auth",
        5,
        "Failed sign-ins for one user name from one client address, within failure_window, "
        "after which that address must wait (lockout) before trying that name again.",
        min=1,
        max=10000,
    )
    signin_failures_per_address: int = _setting(
        "auth",
        20,
        "Failed sign-ins from one client address (any user names) within failure_window, "
        "after which that address must wait (lockout) before signing in again.",
        min=1,
        max=100000,
    )
    api_failures_per_address: int = _setting(
        "auth",
        20,
        "Requests with wrong API credentials from one client address within failure_window, "
        "after which credentials from that address not recently verified get 429 (lockout).",
        min=1,
        max=100000,
    )
    lockout: int = _setting(
        "auth",
        60,
        "Seconds of the first lockout; each further lockout of the same address (or address "
        "and name) doubles it.",
        min=1,
        max=86400,
    )
    lockout_max: int = _setting("auth", 3600, "Longest lockout in seconds.", min=1, max=7 * 86400)
    failure_delay_ms: int = _setting(
        "auth",
        1000,
        "Milliseconds a failed sign-in, or an attempt refused during a lockout, waits before "
        "its answer (costs the server no CPU; slows a guesser that waits for answers).",
        min=0,
        max=10000,
    )
    failure_entries: int = _setting(
        "auth",
        10000,
        "Most addresses (and as many address and user name pairs) whose failures are "
        "remembered; the least recently active are forgotten first.",
        min=100,
        max=10_000_000,
    )
    password_hash_threads: int = _setting(
        "auth",
        1,
        "Password hashes (scrypt, tens of ms of CPU each) computed at the same time, in "
        "threads beside the event loop.",
        min=1,
        max=64,
    )
    password_hash_queue: int = _setting(
        "auth",
        8,
        "Password checks that may wait for a hashing thread; more are refused at once with 429.",
        min=0,
        max=1000,
    )
    # [builds]
    concurrency: int = _setting(
        "builds", 2, "How many build chroots run at the same time.", min=1, max=256
    )
    default_timeout: int = _setting(
        "builds",
        18000,
        "Timeout in seconds for a build that does not ask for one.",
        min=60,
        max=86400,
    )
    upload_size_limit_mb: int = _setting(
        "builds", 512, "Largest SRPM accepted by upload or download, in MiB.", min=1, max=16384
    )
    srpm_allowed_networks: tuple[str, ...] = _setting(
        "builds",
        (),
        "Comma-separated CIDRs of loopback/private networks SRPM URLs may point to "
        "(e.g. 127.0.0.0/8). Empty: only public addresses.",
        networks=True,
    )
    prune_interval_hours: int = _setting(
        "builds",
        24,
        "Hours between the server's runs of the retention rules (pruning old builds, see "
        "README 'Retention'); the first runs 10 minutes after start. 0: only on demand "
        "(python -m copr_lite prune).",
        min=0,
        max=24 * 365,
    )
    # [signing]
    sign: bool = _setting(
        "signing",
        True,
        "Sign every published RPM, SRPM and repomd.xml with a key per project (made in the "
        "background when the project is created; RSA, no expiry). no: publish unsigned "
        "(.repo files then say gpgcheck=0).",
    )
    key_length: int = _setting(
        "signing",
        4096,
        "Size in bits of new project keys (RSA). 4096 is accepted by rpm 4.18, EL 9 and "
        "current Fedora; smaller keys are only quicker to make (the tests use 2048).",
        min=2048,
        max=4096,
    )
    key_wait: int = _setting(
        "signing",
        600,
        "Seconds a build ready to publish waits for its project's key before it fails "
        "(a key is made in about a second; this covers a busy machine).",
        min=1,
        max=86400,
    )
    # [plugins]
    plugins_dir: str = _setting(
        "plugins", "", "Directory whose *.py files are loaded as plugins. Empty: none."
    )
    blocklist: tuple[str, ...] = _setting(
        "plugins",
        (),
        "Comma-separated names of plugins not to load (built-in file stems or entry-point names).",
        names=True,
    )
    # [chroots]: free-form name = builder map, see load_config().
    chroots: dict[str, str] = field(
        default_factory=default_chroots,
        metadata={
            "section": "chroots",
            "help": "Each key is a chroot name (<os>-<version>-<arch>), each value the name "
            "of the builder that serves it.",
        },
    )

    # [repos]: free-form chroot = repositories map, see load_config().
    repos: dict[str, tuple[str, ...]] = field(
        default_factory=dict,
        metadata={
            "section": "repos",
            "help": "Each key is a chroot name, each value the distribution repositories its "
            "builds install BuildRequires from, in order, separated by whitespace: a baseurl "
            "(http(s)://, file:///) or metalink=<url>; $releasever and $basearch work. A "
            "chroot not listed uses the public Fedora / EPEL mirrors.",
        },
    )

    # [plugin:NAME] sections as text; each plugin declares and reads its own (plugin_settings).
    plugin_sections: dict[str, dict[str, str]] = field(
        default_factory=dict, metadata={"section": "plugin:*", "help": "Per-plugin settings."}
    )

    def plugin_settings(self, name: str, settings: type[S]) -> S:
        """The `[plugin:NAME]` section read into the plugin's settings dataclass (see
        `plugin_setting()`); raises ConfigError for an unknown key or a bad value."""
        return parse_plugin_settings(name, settings, self.plugin_sections.get(name, {}))

    def distribution_repos(self, chroot: str) -> tuple[str, ...]:
        """The distribution repositories of a chroot: `[repos] <chroot>`, else the public
        Fedora / EPEL layout for its os and version."""
        if chroot in self.repos:
            return self.repos[chroot]
        return default_distribution_repos(Chroot.parse(chroot))

    @property
    def public_base_url(self) -> str:
        if self.base_url:
            return self.base_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def public_results_url(self) -> str:
        return self.results_url or f"{self.public_base_url}/results"

    # Places in the data directory.
    db_path = _InDataDir("copr-lite.sqlite3")
    # The server's control socket (operator commands such as `prune`, mode 0600).
    control_socket = _InDataDir("control.sock")
    # Locked by the process that owns the data directory (a server, or a command that
    # changes results while no server runs).
    lock_path = _InDataDir(".lock")
    # The keyring of the project keys (mode 0700).
    gnupg_home = _InDataDir("gnupg")
    # Uploaded SRPMs until their import copied them into the results (one directory each).
    upload_dir = _InDataDir("uploads")

    @property
    def upload_size_limit(self) -> int:
        return self.upload_size_limit_mb * 1024 * 1024


SETTINGS: tuple[dataclasses.Field[Any], ...] = tuple(dataclasses.fields(Config))
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(f.metadata["section"] for f in SETTINGS))
# Settings written as `key = value` lines of their section (the others are whole sections).
SIMPLE_SETTINGS = tuple(
    f for f in SETTINGS if f.name not in ("chroots", "repos", "plugin_sections")
)


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    """Turn the ini text of setting `f` into its typed value, or raise ConfigError."""
    where = f"[{f.metadata['section']}] {f.name}"
    raw = raw.strip()
    kind = f.type
    if kind in ("int", "float", "bool"):
        return _convert_scalar(where, str(kind), f.metadata, raw)
    if kind == "Path":
        if not raw:
            raise ConfigError(f"{where}: must not be empty")
        return Path(raw).expanduser()
    if f.metadata.get("names"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if f.metadata.get("networks"):
        nets = [part.strip() for part in raw.split(",") if part.strip()]
        for net in nets:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ConfigError(f"{where}: {net!r} is not a network in CIDR form") from None
        return tuple(nets)
    # str
    return _convert_str(where, f.metadata, raw)


def _convert_str(where: str, checks: Mapping[str, Any], raw: str) -> str:
    choices = checks.get("choices")
    if choices:
        # Matched case-insensitively; the declared spelling is kept.
        chosen = next((c for c in choices if c.lower() == raw.lower()), None)
        if chosen is None:
            raise ConfigError(f"{where} = {raw!r}: choose one of {', '.join(choices)}")
        return str(chosen)
    if checks.get("url") and raw:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", raw):
            raise ConfigError(f"{where} = {raw!r}: expected an http(s) URL")
        raw = raw.rstrip("/")
    return raw


def _convert_scalar(where: str, kind: str, checks: Mapping[str, Any], raw: str) -> Any:
    """An int, float or bool setting's value from its ini text (range-checked)."""
    if kind == "bool":
        lowered = raw.lower()
        if lowered in ("1", "yes", "true", "on"):
            return True
        if lowered in ("0", "no", "false", "off"):
            return False
        raise ConfigError(f"{where} = {raw!r}: expected yes/no, true/false, on/off or 1/0")
    try:
        value: float = int(raw) if kind == "int" else float(raw)
    except ValueError:
        expected = "a whole number" if kind == "int" else "a number"
        raise ConfigError(f"{where} = {raw!r}: expected {expected}") from None
    if value != value or value in (float("inf"), float("-inf")):  # nan, inf
        raise ConfigError(f"{where} = {raw!r}: expected a finite number")
    low, high = checks.get("min"), checks.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f"between {low:g} and {high:g}"
        else:
            bounds = f"at least {low:g}" if low is not None else f"at most {high:g}"
        raise ConfigError(f"{where} = {raw}: must be {bounds}")
    return value


def _parse_chroots(items: list[tuple[str, str]]) -> dict[str, str]:
    chroots: dict[str, str] = {}
    for name, builder in items:
        builder = builder.strip()
        if not CHROOT_RE.match(name):
            raise ConfigError(
                f"[chroots] {name}: a chroot name must look like <os>-<version>-<arch>, "
                "e.g. fedora-41-x86_64"
            )
        if not BUILDER_NAME_RE.match(builder):
            raise ConfigError(f"[chroots] {name} = {builder!r}: not a valid builder name")
        chroots[name] = builder
    return chroots


def _parse_repos(items: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    repos: dict[str, tuple[str, ...]] = {}
    for name, value in items:
        if not CHROOT_RE.match(name):
            raise ConfigError(
                f"[repos] {name}: a chroot name must look like <os>-<version>-<arch>, "
                "e.g. fedora-41-x86_64"
            )
        try:
            repos[name] = tuple(check_entry(entry) for entry in value.split())
        except ValueError as exc:
            raise ConfigError(f"[repos] {name}: {exc}") from None
    return repos


def load_config(path: Path | None = None, **overrides: Any) -> Config:
    """Read `path` (None: embedded defaults only), apply keyword overrides, validate."""
    values: dict[str, Any] = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep key case
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except configparser.Error as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"config file {path} is not valid ini: {first}") from None
        by_key = {(f.metadata["section"], f.name): f for f in SETTINGS}
        for section in parser.sections():
            if section.startswith("plugin:") and len(section) > len("plugin:"):
                values.setdefault("plugin_sections", {})[section[7:]] = dict(parser.items(section))
                continue
            if section not in SECTIONS:
                raise ConfigError(
                    f"{path}: unknown section [{section}] (known: {', '.join(SECTIONS)})"
                )
            if section == "chroots":
                # An empty (all commented) [chroots] keeps the default list.
                if parser.items(section):
                    values["chroots"] = _parse_chroots(parser.items(section))
                continue
            if section == "repos":
                values["repos"] = _parse_repos(parser.items(section))
                continue
            for key, raw in parser.items(section):
                f = by_key.get((section, key))
                if f is None:
                    known = ", ".join(n for (s, n) in by_key if s == section)
                    raise ConfigError(f"{path}: unknown key [{section}] {key} (known: {known})")
                values[key] = _convert(f, raw)
    for key, value in overrides.items():
        if value is None:
            continue
        f = next((f for f in SETTINGS if f.name == key), None)
        if f is None:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _convert(f, str(value)) if isinstance(value, str) else value
    config = Config(**values)
    # A chroot no builder serves is most likely a typo of one that is.
    unknown = sorted(set(config.repos) - set(config.chroots))
    if unknown:
        raise ConfigError(
            f"[repos] {unknown[0]}: not a chroot this server offers "
            f"(the chroots: {', '.join(config.chroots)})"
        )
    tls_context(config)  # a missing or unusable certificate is a startup error
    return config


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context from `tls_cert` and `tls_key`, or None for plain HTTP;
    raises ConfigError when only one is set or they cannot be loaded."""
    if not config.tls_cert and not config.tls_key:
        return None
    if not config.tls_cert or not config.tls_key:
        raise ConfigError("[server] tls_cert and tls_key: set both (HTTPS) or neither (HTTP)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as exc:  # an OSError too: first
        raise ConfigError(
            f"[server] tls_cert/tls_key: not a usable PEM certificate and key ({exc.reason})"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"[server] tls_cert/tls_key: cannot read {exc.filename or config.tls_cert}: "
            f"{exc.strerror or exc}"
        ) from None
    return context


# ---------------------------------------------------------------- plugin settings
#
# A plugin declares its `[plugin:NAME]` section as a frozen dataclass whose fields are made
# with `plugin_setting()`, registers it in the `register_settings` hook, and reads it with
# `config.plugin_settings(NAME, TheDataclass)`. Declared settings are validated at startup
# with the core ones: an unknown section or key, or a bad value, is one ConfigError.

S = TypeVar("S")
PLUGIN_SETTING_TYPES = ("str", "int", "float", "bool", "dict[str, str]")


def plugin_setting(default: Any, help: str, **checks: Any) -> Any:
    """One setting of a plugin: a field of its settings dataclass.

    The field's type (str, int, float or bool) says how its ini text is read. Checks:
    `min` and `max` for numbers, `choices` for a str. A `dict[str, str]` field gathers every
    key written `<prefix><name>`, declared as `key="<prefix><name>"` (e.g.
    `key="image.<chroot>"`): `image.fedora-40-x86_64 = x` gives `{"fedora-40-x86_64": "x"}`.
    """
    if isinstance(default, dict):
        copy = dict(default)
        return field(default_factory=lambda: dict(copy), metadata={"help": help, **checks})
    return field(default=default, metadata={"help": help, **checks})


def _field_kinds(cls: type) -> dict[str, str]:
    """Each field of a settings dataclass with its type written as text ("int", ...)."""
    hints = get_type_hints(cls)
    kinds = {}
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        kinds[f.name] = hint.__name__ if isinstance(hint, type) else str(hint)
    return kinds


def setting_key(f: dataclasses.Field[Any]) -> str:
    """How a plugin setting is written in its section (`image.<chroot>` for a dict)."""
    return str(f.metadata.get("key", f.name))


def check_settings_class(cls: type) -> None:
    """Raise TypeError unless `cls` declares plugin settings as `plugin_setting()` says."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    for name, kind in _field_kinds(cls).items():
        f = next(f for f in dataclasses.fields(cls) if f.name == name)
        if kind not in PLUGIN_SETTING_TYPES:
            allowed = ", ".join(PLUGIN_SETTING_TYPES)
            raise TypeError(f"{cls.__name__}.{name}: type {kind} is not one of {allowed}")
        if not str(f.metadata.get("help", "")).strip():
            raise TypeError(f"{cls.__name__}.{name}: no help text (use plugin_setting())")
        if (kind == "dict[str, str]") != ("<" in setting_key(f)):
            raise TypeError(
                f"{cls.__name__}.{name}: a dict[str, str] field needs key='<prefix><name>', "
                "and only such a field may have one"
            )


def parse_plugin_settings(name: str, cls: type[S], raw: Mapping[str, str]) -> S:
    """The `[plugin:NAME]` section `raw` read into the settings dataclass `cls`.

    Raises ConfigError naming an unknown key or a bad value (a ValueError raised by the
    dataclass's own `__post_init__` checks is reported the same way).
    """
    section = f"[plugin:{name}]"
    kinds = _field_kinds(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    plain = {setting_key(f): f for f in fields.values() if kinds[f.name] != "dict[str, str]"}
    prefixed = {setting_key(f).split("<")[0]: f for f in fields.values() if f.name not in plain}
    values: dict[str, Any] = {}
    for key, text in raw.items():
        text = text.strip()
        f = plain.get(key)
        if f is not None:
            kind = kinds[f.name]
            where = f"{section} {key}"
            if kind == "str":
                values[f.name] = _convert_str(where, f.metadata, text)
            elif text:  # an empty number or flag keeps its default
                values[f.name] = _convert_scalar(where, kind, f.metadata, text)
            continue
        prefix = next((p for p in prefixed if key.startswith(p) and len(key) > len(p)), None)
        if prefix is None:
            known = ", ".join(setting_key(f) for f in fields.values())
            raise ConfigError(f"unknown key {section} {key} (known: {known or 'none'})")
        if text:
            values.setdefault(prefixed[prefix].name, {})[key[len(prefix) :]] = text
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"{section} {exc}") from None


class PluginSettingsRegistry:
    """The `[plugin:NAME]` sections plugins declare; filled by the `register_settings` hook."""

    def __init__(self) -> None:
        self._sections: dict[str, type] = {}

    def add(self, name: str, settings: type) -> None:
        """Declare section `[plugin:NAME]` as read into the dataclass `settings`."""
        if not BUILDER_NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a valid plugin section name")
        if name in self._sections:
            raise ValueError(f"the section [plugin:{name}] is already declared")
        check_settings_class(settings)
        self._sections[name] = settings

    def get(self, name: str) -> type | None:
        return self._sections.get(name)

    def names(self) -> list[str]:
        return sorted(self._sections)

    def validate(self, config: Config) -> None:
        """Raise ConfigError for the first unknown section, unknown key or bad value.

        The section of a plugin in the blocklist is not read (the plugin is off).
        """
        for name, raw in config.plugin_sections.items():
            cls = self._sections.get(name)
            if cls is not None:
                parse_plugin_settings(name, cls, raw)
            elif name not in config.blocklist:
                declared = ", ".join(f"[plugin:{n}]" for n in self.names()) or "none"
                raise ConfigError(
                    f"unknown section [plugin:{name}]: no plugin declares it (declared: {declared})"
                )

    def render(self, config: Config) -> list[str]:
        """Every declared section with its help and effective values, as ini lines."""
        lines: list[str] = []
        for name in self.names():
            cls = self._sections[name]
            values: object = parse_plugin_settings(name, cls, config.plugin_sections.get(name, {}))
            lines.append(f"[plugin:{name}]")
            for f in dataclasses.fields(cls):
                lines.append(f"# {f.metadata['help']}")
                value = getattr(values, f.name)
                if isinstance(value, dict):
                    prefix = setting_key(f).split("<")[0]
                    lines.extend(f"{prefix}{k} = {v}" for k, v in value.items())
                    if not value:
                        lines.append(f"# {setting_key(f)} = ")
                    continue
                lines.append(f"{setting_key(f)} = {_ini_text(value)}")
            lines.append("")
        return lines


def _ini_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_config(config: Config, plugins: PluginSettingsRegistry | None = None) -> str:
    """The effective settings as an ini text, each with its help as a comment; with
    `plugins`, every declared plugin section too, at its effective values."""
    lines: list[str] = []
    for section in SECTIONS:
        if section == "plugin:*":
            continue
        lines.append(f"[{section}]")
        for f in SETTINGS:
            if f.metadata["section"] != section:
                continue
            value = getattr(config, f.name)
            if f.name == "plugin_sections":
                continue
            if f.name == "chroots":
                lines.append(f"# {f.metadata['help']}")
                lines.extend(f"{name} = {builder}" for name, builder in value.items())
                continue
            if f.name == "repos":
                lines.append(f"# {f.metadata['help']}")
                lines.extend(f"{name} = {' '.join(urls)}" for name, urls in value.items())
                # The chroots left to the default, with what that default is.
                for name in config.chroots:
                    if name not in value:
                        default = " ".join(config.distribution_repos(name)) or "(none)"
                        lines.append(f"# {name} = {default}")
                continue
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, tuple):
                value = ", ".join(value)
            lines.append(f"# {f.metadata['help']}")
            lines.append(f"{f.name} = {value}")
        lines.append("")
    if plugins is not None:
        lines.extend(plugins.render(config))
    for name, items in config.plugin_sections.items():
        if plugins is not None and plugins.get(name) is not None:
            continue
        lines.append(f"[plugin:{name}]")
        lines.extend(f"{key} = {value}" for key, value in items.items())
        lines.append("")
    return "\n".join(lines)
