"""Incoming forge webhooks: check a delivery's signature and read what was pushed.

Pure: no web framework, no database. `verify_and_parse` takes a delivery as the forge sent
it (headers and raw body) and the project's webhook secret, and answers a `Push` or raises
`DeliveryError` (its `status` 403 for a missing or wrong signature, 400 for a payload that
cannot be read).

How each forge signs (every comparison is constant-time):

- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`;
- Gitea and Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature`: the hex HMAC-SHA256;
- GitLab: `X-Gitlab-Token` is the secret itself;
- custom (a CI job, a script): the secret in `X-Copr-Token` or `Authorization: Bearer`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

FORGES = ("github", "gitlab", "gitea", "forgejo", "custom")

# The `after` of a push that deleted its branch or tag.
ZERO_COMMIT = "0" * 40

# The header naming each forge's delivery (GitLab: the second one on older releases).
DELIVERY_HEADERS: dict[str, tuple[str, ...]] = {
    "github": ("x-github-delivery",),
    "gitlab": ("x-gitlab-event-uuid", "idempotency-key"),
    "gitea": ("x-gitea-delivery",),
    "forgejo": ("x-forgejo-delivery",),
    "custom": ("x-copr-delivery",),
}
EVENT_HEADERS = {
    "github": "x-github-event",
    "gitlab": "x-gitlab-event",
    "gitea": "x-gitea-event",
    "forgejo": "x-forgejo-event",
}
# Forges whose signature is a hex HMAC-SHA256 of the body, in this header.
HMAC_HEADERS = {"gitea": "x-gitea-signature", "forgejo": "x-forgejo-signature"}
GITHUB_SIGNATURE = "x-hub-signature-256"
GITLAB_TOKEN = "x-gitlab-token"
CUSTOM_TOKEN = "x-copr-token"
# The payload keys that hold a URL of the pushed repository, per forge's object.
URL_KEYS = (
    "clone_url",
    "git_http_url",
    "http_url",
    "ssh_url",
    "git_ssh_url",
    "html_url",
    "web_url",
    "git_url",
    "svn_url",
    "url",
    "homepage",
)
# Delivery ids longer than this are cut (they are stored and shown).
MAX_DELIVERY_ID = 200


class DeliveryError(Exception):
    """A delivery refused: `status` is the HTTP status to answer, `text` one line."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True)
class Push:
    """What a delivery says.

    Attributes:
        forge: one of FORGES.
        delivery_id: the forge's id of this delivery, or None when it sent none.
        event: "push" (a branch), "tag", "ping", "custom", or the forge's own event name
            for the events that build nothing.
        urls: the pushed repository's URLs, normalised (`normalize_url`).
        branch: the pushed branch (push), else None.
        tag: the pushed tag (tag), else None.
        commit: the commit the branch or tag now points at, or None.
        deleted: the push deleted its branch or tag.
        changed_files: every file the pushed commits added, modified or removed; None when
            the payload lists no commits.
    """

    forge: str
    delivery_id: str | None
    event: str
    urls: tuple[str, ...] = ()
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    deleted: bool = False
    changed_files: frozenset[str] | None = None

    @property
    def ref_text(self) -> str:
        """The branch or tag, for messages."""
        if self.tag is not None:
            return f"tag {self.tag}"
        return f"branch {self.branch}" if self.branch is not None else "no branch"


def normalize_url(url: str) -> str:
    """A repository URL in the form pushes are matched in: credentials dropped, host in
    lower case, no trailing "/" nor ".git". `git@host:path` becomes `ssh://host/path`."""
    url = url.strip()
    if "://" not in url and "@" in url and ":" in url.split("@", 1)[1]:
        user_host, path = url.split(":", 1)
        url = f"ssh://{user_host}/{path}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return url.rstrip("/").removesuffix(".git").rstrip("/")
    netloc = host.lower() + (f":{port}" if port else "")
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, "", ""))


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def delivery_id_of(forge: str, headers: Mapping[str, str]) -> str | None:
    """The forge's id of a delivery, or None when it sent none."""
    found = _lower(headers)
    for name in DELIVERY_HEADERS.get(forge, ()):
        value = found.get(name, "").strip()
        if value:
            return value[:MAX_DELIVERY_ID]
    return None


def event_name(forge: str, headers: Mapping[str, str]) -> str:
    """The event the forge names in its header ("custom" for custom deliveries)."""
    if forge == "custom":
        return "custom"
    return _lower(headers).get(EVENT_HEADERS.get(forge, ""), "").strip()[:100] or "unknown"


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _given_signature(forge: str, headers: dict[str, str]) -> str | None:
    """What the delivery carries to prove it knows the secret, as sent; None for nothing."""
    if forge == "github":
        return headers.get(GITHUB_SIGNATURE)
    if forge in HMAC_HEADERS:
        return headers.get(HMAC_HEADERS[forge])
    if forge == "gitlab":
        return headers.get(GITLAB_TOKEN)
    token = headers.get(CUSTOM_TOKEN)
    authorization = headers.get("authorization", "")
    if token is None and authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    return token


def _signature_matches(forge: str, given: str, secret: str, body: bytes) -> bool:
    if forge == "github":
        return _equal(given.strip(), "sha256=" + _hmac_hex(secret, body))
    if forge in HMAC_HEADERS:
        return _equal(given.strip().lower(), _hmac_hex(secret, body))
    return _equal(given, secret)


def check_signature(
    forge: str, headers: Mapping[str, str], body: bytes, secret: str | None, *, required: bool
) -> None:
    """Raise DeliveryError(403) unless the delivery is signed with `secret` as `forge`
    signs; an unsigned delivery passes when not `required` (the secret was in the URL)."""
    given = _given_signature(forge, _lower(headers))
    if not given:
        if required:
            raise DeliveryError(403, f"Missing signature: this {forge} webhook must be signed.")
        return
    if secret is None:
        raise DeliveryError(
            403, "This project has no webhook secret yet: generate one on its Integrations tab."
        )
    if not _signature_matches(forge, given, secret, body):
        raise DeliveryError(403, "Bad signature: the webhook secret does not match.")


def verify_and_parse(
    forge: str,
    headers: Mapping[str, str],
    body: bytes,
    secret: str | None,
    *,
    url_secret_ok: bool,
) -> Push:
    """Check the delivery's signature (required unless `url_secret_ok`: the URL carried the
    secret already, as in Copr's webhook URLs) and read it into a Push."""
    if forge not in FORGES:
        raise DeliveryError(404, f"Unknown forge {forge[:40]!r}: use one of {', '.join(FORGES)}.")
    if secret is None and not url_secret_ok:
        raise DeliveryError(
            403, "This project has no webhook secret yet: generate one on its Integrations tab."
        )
    check_signature(forge, headers, body, secret, required=not url_secret_ok)
    return parse(forge, headers, body)


def parse(forge: str, headers: Mapping[str, str], body: bytes) -> Push:
    """Read a delivery whose signature was checked (DeliveryError 400 when unreadable)."""
    delivery = delivery_id_of(forge, headers)
    event = event_name(forge, headers)
    if forge == "custom":
        # A forge pointed at a custom URL (as Copr allows) says hello with a ping first.
        pinged = _lower(headers).get(EVENT_HEADERS["github"]) == "ping"
        return Push(forge, delivery, "ping" if pinged else "custom")
    if event == "ping":
        return Push(forge, delivery, "ping")
    try:
        payload = json.loads(body)
    except ValueError:
        raise DeliveryError(400, "The payload is not JSON.") from None
    if not isinstance(payload, dict):
        raise DeliveryError(400, "The payload is not a JSON object.")
    if not _is_push(forge, event, payload):
        return Push(forge, delivery, event)
    return _push(forge, delivery, payload)


def _is_push(forge: str, event: str, payload: dict[str, Any]) -> bool:
    if forge == "gitlab":
        return payload.get("object_kind") in ("push", "tag_push") or event in (
            "Push Hook",
            "Tag Push Hook",
        )
    # GitHub, Gitea and Forgejo send a tag push as a push of refs/tags/<tag>; their
    # "create" event repeats it and builds nothing, so a tag never builds twice.
    return event == "push"


def _push(forge: str, delivery: str | None, payload: dict[str, Any]) -> Push:
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref:
        raise DeliveryError(400, "The push names no ref.")
    urls = repository_urls(payload)
    if not urls:
        raise DeliveryError(400, "The push names no repository URL.")
    commit = payload.get("checkout_sha") or payload.get("after")
    commit = commit if isinstance(commit, str) and commit else None
    deleted = payload.get("deleted") is True or payload.get("after") == ZERO_COMMIT
    branch = tag = None
    if ref.startswith("refs/tags/"):
        tag, event = ref.removeprefix("refs/tags/"), "tag"
    else:
        branch, event = ref.removeprefix("refs/heads/"), "push"
    return Push(
        forge,
        delivery,
        event,
        urls,
        branch,
        tag,
        None if deleted else commit,
        deleted,
        changed_files(payload),
    )


def repository_urls(payload: dict[str, Any]) -> tuple[str, ...]:
    """Every URL of the pushed repository the payload gives (GitHub and Gitea under
    `repository`, GitLab under `project` and `repository`), normalised, without repeats."""
    found: list[str] = []
    for key in ("repository", "project"):
        section = payload.get(key)
        if not isinstance(section, dict):
            continue
        for name in URL_KEYS:
            value = section.get(name)
            if isinstance(value, str) and ("://" in value or _scp_like(value)):
                url = normalize_url(value)
                if url not in found:
                    found.append(url)
    return tuple(found)


def _scp_like(value: str) -> bool:
    return value.startswith("git@") and ":" in value


def changed_files(payload: dict[str, Any]) -> frozenset[str] | None:
    """The files the pushed commits touched; None when the payload lists no commits."""
    commits = payload.get("commits")
    if not isinstance(commits, list):
        return None
    files: set[str] = set()
    for commit in commits:
        if not isinstance(commit, dict):
            continue
        for key in ("added", "modified", "removed"):
            names = commit.get(key)
            if isinstance(names, list):
                files.update(name for name in names if isinstance(name, str))
    return frozenset(files)


# ---------------------------------------------------------------- which packages a push builds


def _tag_names_package(tag: str, package: str) -> bool:
    """`<package>-<version>` or `<package>-<version>-<release>` (or with "_"), the version
    and release each holding a digit: Copr's rule for a tag that builds one package."""
    for separator in ("-", "_"):
        parts = tag.split(separator)
        for _ in range(2):
            if len(parts) < 2 or not any(char.isdigit() for char in parts[-1]):
                break
            parts.pop()
            if any(joint.join(parts) == package for joint in ("-", "_")):
                return True
    return False


def _under(subdirectory: str, files: frozenset[str]) -> bool:
    prefix = subdirectory.strip("/")
    if not prefix or prefix == ".":
        return bool(files)
    return any(name.strip("/").startswith(prefix + "/") for name in files)


def push_builds(push: Push, name: str, source: Mapping[str, Any], url_package: str | None) -> bool:
    """Whether the push rebuilds package `name` whose SCM source is `source`, as Copr decides:
    the source's clone URL is the pushed repository's; a tag builds a package the URL
    names or one the tag names (`<name>-<version>`); a branch builds a package following
    that branch (or no branch in particular) when the pushed commits touch its
    subdirectory. `url_package` is the package the webhook URL names, if any."""
    if push.deleted or url_package not in (None, name):
        return False
    clone_url = source.get("clone_url")
    if not isinstance(clone_url, str) or normalize_url(clone_url) not in push.urls:
        return False
    if push.tag is not None:
        return url_package == name or _tag_names_package(push.tag, name)
    if push.branch is None:
        return False
    committish = str(source.get("committish") or "")
    if committish and committish not in (push.branch, f"refs/heads/{push.branch}"):
        return False
    if push.changed_files is None:
        return True
    return _under(str(source.get("subdirectory") or ""), push.changed_files)
