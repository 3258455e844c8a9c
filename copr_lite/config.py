"""Settings: declared once (name, section, type, default, help), read from copr-lite.ini.

Every setting is a field of the frozen `Config` dataclass; its section and help text live in the
field's metadata, so the table below is the only place a setting is declared. `load_config()`
parses an ini file, rejects unknown sections and keys by name, converts and range-checks every
value, and returns a `Config`. Problems raise `ConfigError` with one line for the operator.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    # [plugin:NAME] sections, kept as text for each plugin to read (see plugin_settings).
    plugin_sections: dict[str, dict[str, str]] = field(
        default_factory=dict, metadata={"section": "plugin:*", "help": "Per-plugin settings."}
    )

    def plugin_settings(self, name: str) -> dict[str, str]:
        """The keys of the `[plugin:NAME]` section (empty when there is none)."""
        return dict(self.plugin_sections.get(name, {}))

    @property
    def public_base_url(self) -> str:
        if self.base_url:
            return self.base_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def public_results_url(self) -> str:
        return self.results_url or f"{self.public_base_url}/results"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "copr-lite.sqlite3"

    @property
    def upload_size_limit(self) -> int:
        return self.upload_size_limit_mb * 1024 * 1024


SETTINGS: tuple[dataclasses.Field[Any], ...] = tuple(dataclasses.fields(Config))
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(f.metadata["section"] for f in SETTINGS))
# Settings written as `key = value` lines of their section (the others are whole sections).
SIMPLE_SETTINGS = tuple(f for f in SETTINGS if f.name not in ("chroots", "plugin_sections"))


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    """Turn the ini text of setting `f` into its typed value, or raise ConfigError."""
    where = f"[{f.metadata['section']}] {f.name}"
    raw = raw.strip()
    kind = f.type
    if kind == "int":
        try:
            value: Any = int(raw)
        except ValueError:
            raise ConfigError(f"{where} = {raw!r}: expected a whole number") from None
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{where} = {value}: must be between {low} and {high}")
        return value
    if kind == "bool":
        lowered = raw.lower()
        if lowered in ("1", "yes", "true", "on"):
            return True
        if lowered in ("0", "no", "false", "off"):
            return False
        raise ConfigError(f"{where} = {raw!r}: expected yes/no, true/false, on/off or 1/0")
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
    choices = f.metadata.get("choices")
    if choices:
        raw = raw.upper()
        if raw not in choices:
            raise ConfigError(f"{where} = {raw!r}: choose one of {', '.join(choices)}")
    if f.metadata.get("url") and raw:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", raw):
            raise ConfigError(f"{where} = {raw!r}: expected an http(s) URL")
        raw = raw.rstrip("/")
    return raw


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
    return Config(**values)


def render_config(config: Config) -> str:
    """The effective settings as an ini text, each with its help as a comment."""
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
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, tuple):
                value = ", ".join(value)
            lines.append(f"# {f.metadata['help']}")
            lines.append(f"{f.name} = {value}")
        lines.append("")
    for name, items in config.plugin_sections.items():
        lines.append(f"[plugin:{name}]")
        lines.extend(f"{key} = {value}" for key, value in items.items())
        lines.append("")
    return "\n".join(lines)
