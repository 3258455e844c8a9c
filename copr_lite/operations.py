"""Every change the server offers, declared once: its fields (type, limits, help), who may do
it, and which fields only system admins may set.

API v1, API v3, the web forms and the OpenAPI description all read these declarations; the
service functions in `services/` parse a request's values with `Operation.parse` inside the
same database hop that looks the project up and checks the permission. The APIs only rename
their own spellings of a field (v3's `additional_repos` is `repos` here) before calling them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import forms
from .auth import Action
from .errors import Forbidden
from .models import User


class Kind(enum.Enum):
    """How a field's value is read and checked. Form values are strings; JSON ones may also
    be booleans, numbers or lists (of strings), which are accepted where they fit."""

    TEXT = "text"  # free text of at most `limit` bytes
    SHORT_TEXT = "short_text"  # one line, cut at 1000 characters (homepage, contact)
    NAME = "name"  # a project name
    FLAG = "flag"  # a checkbox: WTForms rules for strings, or a JSON boolean
    NUMBER = "number"  # an integer in [low, high]; empty means the default
    REPOS = "repos"  # http(s) or copr:// URLs, whitespace-separated or a list
    SRPM_URLS = "srpm_urls"  # http(s) URLs of SRPMs, whitespace-separated or a list
    PACKAGES = "packages"  # buildroot packages, optionally with an operator and a version
    NAMES = "names"  # whitespace-separated words or a list (chroot names)


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    help: str
    default: object = None
    low: int = 0
    high: int = 0
    limit: int = forms.TEXT_LIMIT
    required: bool = False

    def parse(self, value: object, allowed_networks: tuple[str, ...]) -> object:
        """The checked value; raises forms.ValidationError (or PayloadTooLarge)."""
        kind = self.kind
        if kind is Kind.FLAG:
            if isinstance(value, bool):
                return value
            if isinstance(value, int | float):
                return bool(value)
            return _text(value, self.name) not in ("", "false")
        if kind is Kind.NUMBER:
            if isinstance(value, bool):
                raise forms.validation_error(self.name, "Must be a whole number.")
            text = str(value) if isinstance(value, int) else _text(value, self.name)
            assert isinstance(self.default, int)
            return forms.check_int(text, self.name, self.default, self.low, self.high)
        text = words(value, self.name) if kind in _LISTS else _text(value, self.name)
        if kind is Kind.TEXT:
            holder = forms.Form({self.name: text})
            return forms.check_text(holder, self.name, self.limit)
        if kind is Kind.SHORT_TEXT:
            return text.strip()[:1000]
        if kind is Kind.NAME:
            return forms.check_name(text, self.name)
        if kind is Kind.REPOS:
            return forms.check_repos(text)
        if kind is Kind.SRPM_URLS:
            return forms.check_srpm_urls(text, self.name, allowed_networks)
        if kind is Kind.PACKAGES:
            return forms.check_buildroot_pkgs(text)
        return text.split()


_LISTS = frozenset({Kind.REPOS, Kind.SRPM_URLS, Kind.PACKAGES, Kind.NAMES})


def _text(value: object, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise forms.validation_error(name, "Must be a string.")


def words(value: object, name: str) -> str:
    """A list-or-whitespace-separated field's value as one string (ValidationError on
    `name` for anything else)."""
    if isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise forms.validation_error(name, "Must be a list of strings.")
        return " ".join(value)
    return _text(value, name)


@dataclass(frozen=True)
class Operation:
    """One change: its fields, the project permission it needs (None: any signed-in user
    acting on their own behalf), and the fields only system admins may set (with the
    message that refuses them)."""

    name: str
    summary: str
    fields: tuple[Field, ...]
    action: Action | None
    admin_only: Mapping[str, str] = field(default_factory=dict)

    def field_named(self, name: str) -> Field:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(item.name for item in self.fields)

    def parse(
        self,
        values: Mapping[str, object],
        user: User,
        allowed_networks: tuple[str, ...] = (),
        *,
        defaults: bool = False,
    ) -> dict[str, object]:
        """The checked values of the declared fields present in `values` (with `defaults`,
        absent ones get their default). Keys not declared here are ignored: each API
        decides itself whether it refuses them.

        Every field is checked; the first error is raised, carrying all of them in its
        `errors` (field name: text), so a form can show each beside its input.
        """
        parsed: dict[str, object] = {}
        errors: dict[str, forms.ValidationError] = {}
        for item in self.fields:
            value = values.get(item.name)
            if item.kind is Kind.NUMBER and isinstance(value, str) and not value.strip():
                value = None  # an empty number field changes nothing (or takes the default)
            if value is not None:
                try:
                    parsed[item.name] = item.parse(value, allowed_networks)
                except forms.ValidationError as exc:
                    errors[item.name] = exc
            elif item.required:
                errors[item.name] = forms.validation_error(item.name, "This field is required.")
            elif defaults and item.default is not None:
                parsed[item.name] = item.default
        if errors:
            first = next(iter(errors.values()))
            first.errors = {name: exc.text for name, exc in errors.items()}
            raise first
        for name, message in self.admin_only.items():
            if parsed.get(name) and not user.is_admin:
                raise Forbidden(message)
        return parsed


# ---------------------------------------------------------------- the declarations

_PROJECT_FIELDS = (
    Field("description", Kind.TEXT, "What the project builds (Markdown).", ""),
    Field("instructions", Kind.TEXT, "How to use the repositories (Markdown).", ""),
    Field(
        "repos",
        Kind.REPOS,
        f"Extra repositories every build uses: http(s) or copr://owner/project URLs (at most "
        f"{forms.MAX_REPOS}).",
        "",
    ),
    Field("homepage", Kind.SHORT_TEXT, "The project's home page.", ""),
    Field("contact", Kind.SHORT_TEXT, "Who to contact about it.", ""),
    Field("auto_createrepo", Kind.FLAG, "Publish each build's packages to the repositories.", True),
    Field("build_enable_net", Kind.FLAG, "Builds may use the network by default.", True),
    Field("unlisted_on_hp", Kind.FLAG, "Keep its builds off the home page.", False),
    Field("persistent", Kind.FLAG, "Protected against deletion (system admins only).", False),
    Field("auto_prune", Kind.FLAG, "Remove old builds automatically.", True),
    Field("use_bootstrap_container", Kind.FLAG, "Use a bootstrap container (mock).", False),
    # Retention (README "Retention"); limits in forms.RETENTION_LIMITS.
    Field(
        "prune_days",
        Kind.NUMBER,
        "Days before a superseded succeeded build is pruned.",
        14,
        *forms.RETENTION_LIMITS["prune_days"],
    ),
    Field(
        "keep_last",
        Kind.NUMBER,
        "Finished builds kept per package and chroot; 0: unlimited.",
        0,
        *forms.RETENTION_LIMITS["keep_last"],
    ),
    Field(
        "failed_log_days",
        Kind.NUMBER,
        "Days failed builds' results and logs are kept.",
        30,
        *forms.RETENTION_LIMITS["failed_log_days"],
    ),
)
_CHROOTS = Field("chroots", Kind.NAMES, "Chroot names, whitespace-separated or a list.")

CREATE_PROJECT = Operation(
    "create_project",
    "Create a project of the caller (a system admin may create one for another user).",
    (
        Field("name", Kind.NAME, "The project's name, unique per owner.", required=True),
        *_PROJECT_FIELDS,
        _CHROOTS,
        Field("initial_pkgs", Kind.SRPM_URLS, "SRPM URLs to build at once.", ""),
    ),
    None,
    {"persistent": "Only admins may create persistent projects."},
)
EDIT_PROJECT = Operation(
    "edit_project",
    "Change the given settings of a project (and its chroots, when given).",
    (*_PROJECT_FIELDS, _CHROOTS),
    Action.MODIFY,
    {"persistent": "Only admins may make projects persistent."},
)
DELETE_PROJECT = Operation(
    "delete_project",
    "Cancel a project's unfinished builds, then remove it with its builds and results.",
    (),
    Action.DELETE,
)
SUBMIT_BUILD = Operation(
    "submit_build",
    "Build SRPMs (by URL, or one uploaded) in some or all of a project's chroots.",
    (
        Field(
            "pkgs",
            Kind.SRPM_URLS,
            f"SRPM URLs (http or https, ending in .src.rpm), at most {forms.MAX_PKGS}.",
        ),
        Field("chroots", Kind.NAMES, "Chroots to build in; none: all of the project's."),
        Field("exclude_chroots", Kind.NAMES, "Chroots not to build in."),
        Field(
            "memory_reqs",
            Kind.NUMBER,
            "Memory in MiB.",
            forms.DEFAULT_MEMORY,
            *forms.MEMORY_RANGE,
        ),
        Field("timeout", Kind.NUMBER, "Seconds; 0: the server's default.", 0, 0, forms.MAX_TIMEOUT),
        Field("enable_net", Kind.FLAG, "The build may use the network (default: the project's)."),
        Field("background", Kind.FLAG, "Build after the non-background builds.", False),
    ),
    Action.BUILD,
)
CANCEL_BUILD = Operation("cancel_build", "Cancel a build's unfinished chroots.", (), Action.BUILD)
EDIT_CHROOT = Operation(
    "edit_chroot",
    "Change the packages always in a chroot's buildroot and its extra repositories.",
    (
        Field(
            "buildroot_pkgs",
            Kind.PACKAGES,
            "Package names, each optionally followed by an operator and a version "
            f"(at most {forms.BUILDROOT_PKGS_LIMIT // 1024} KiB).",
        ),
        Field("repos", Kind.REPOS, "Extra repositories of this chroot's builds."),
    ),
    Action.MODIFY,
)
REGENERATE_REPOS = Operation(
    "regenerate_repos",
    "Write the repository metadata of every chroot of a project again.",
    (),
    Action.MODIFY,
)
SET_PERMISSIONS = Operation(
    "set_permissions",
    "Set users' builder and admin roles on a project: nothing, request or approved.",
    (),
    Action.MODIFY,
)
REQUEST_PERMISSIONS = Operation(
    "request_permissions",
    "Ask the project's owner for the builder or admin role (or withdraw the request).",
    (
        Field("builder", Kind.FLAG, "Ask for the builder role (false: withdraw it)."),
        Field("admin", Kind.FLAG, "Ask for the admin role (false: withdraw it)."),
    ),
    None,
)
DELETE_BUILDS = Operation(
    "delete_builds",
    "Remove finished builds with their results, and republish their chroots' repositories "
    "(their submitter may too).",
    (),
    Action.MODIFY,
)
DELETE_PACKAGE = Operation(
    "delete_package", "Delete a package's builds and its record.", (), Action.MODIFY
)
RESET_PACKAGE = Operation(
    "reset_package",
    "Forget a package's source and build options: it is built from SRPMs only again.",
    (),
    Action.MODIFY,
)
SAVE_PACKAGE = Operation(
    "save_package",
    "Define a package with a source (scm: a git repository; custom: a script) or change it.",
    (
        Field("webhook_rebuild", Kind.FLAG, "A push to its repository builds it (webhooks)."),
        Field(
            "max_builds",
            Kind.NUMBER,
            "Finished builds kept per chroot; 0: the project's setting.",
            0,
            *forms.RETENTION_LIMITS["keep_last"],
        ),
        Field(
            "timeout",
            Kind.NUMBER,
            "Seconds its builds may take; 0: the server's default.",
            0,
            0,
            forms.MAX_TIMEOUT,
        ),
        Field("chroot_denylist", Kind.NAMES, "Chroots (or patterns) its builds skip."),
    ),
    Action.BUILD,
)
GENERATE_WEBHOOK_SECRET = Operation(
    "generate_webhook_secret",
    "Replace the secret of the project's incoming webhooks with a new random one.",
    (),
    Action.MODIFY,
)

OPERATIONS: tuple[Operation, ...] = (
    CREATE_PROJECT,
    EDIT_PROJECT,
    DELETE_PROJECT,
    SUBMIT_BUILD,
    CANCEL_BUILD,
    DELETE_BUILDS,
    DELETE_PACKAGE,
    RESET_PACKAGE,
    SAVE_PACKAGE,
    EDIT_CHROOT,
    REGENERATE_REPOS,
    SET_PERMISSIONS,
    REQUEST_PERMISSIONS,
    GENERATE_WEBHOOK_SECRET,
)

ROLES = ("builder", "admin")
PERMISSION_STATES = ("nothing", "request", "approved")
