"""forges.py: each forge's signature, its payload read into a Push, and which packages a
push builds (Copr's rules), on the documented example payloads in tests/fixtures/webhooks/."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from conftest import FIXTURES

from copr_lite import forges
from copr_lite.forges import DeliveryError, Push, normalize_url, push_builds, verify_and_parse

SECRET = "3b4bd6a4-2f5c-4a53-9d3c-2f6c4a0e9b1d"


def payload(name: str) -> bytes:
    return (FIXTURES / "webhooks" / f"{name}.json").read_bytes()


def signed(forge: str, body: bytes, event: str, secret: str = SECRET) -> dict[str, str]:
    """The headers `forge` sends with a delivery of `body` signed with `secret`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "github": {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": f"sha256={digest}",
        },
        "gitea": {"X-Gitea-Event": event, "X-Gitea-Delivery": "d1", "X-Gitea-Signature": digest},
        "forgejo": {
            "X-Forgejo-Event": event,
            "X-Forgejo-Delivery": "f1",
            "X-Forgejo-Signature": digest,
        },
        "gitlab": {
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
            "X-Gitlab-Token": secret,
        },
        "custom": {"X-Copr-Token": secret},
    }[forge]


@pytest.mark.parametrize(
    ("forge", "fixture", "event", "branch", "url"),
    [
        ("github", "github-push", "push", "main", "https://GitHub.com/Codertocat/Hello-World.git"),
        ("gitea", "gitea-push", "push", "develop", "https://gitea.example.com/gitea/webhooks"),
        ("forgejo", "forgejo-push", "push", "main", "https://codeberg.example.org/forgejo/hello"),
        ("gitlab", "gitlab-push-hook", "Push Hook", "main", "http://example.com/mike/diaspora"),
    ],
)
def test_each_forge_signed_push_is_read(forge, fixture, event, branch, url):
    body = payload(fixture)
    push = verify_and_parse(forge, signed(forge, body, event), body, SECRET, url_secret_ok=False)
    assert push.event == "push"
    assert push.branch == branch and push.tag is None and not push.deleted
    assert push.commit and len(push.commit) == 40
    assert push.delivery_id
    # the https form and the ssh form of the repository are both there
    assert normalize_url(url) in push.urls
    assert any(u.startswith("ssh://") for u in push.urls)
    assert push.changed_files


def test_tags_are_read_from_github_and_gitlab():
    body = payload("github-tag-push")
    push = verify_and_parse(
        "github", signed("github", body, "push"), body, SECRET, url_secret_ok=False
    )
    assert (push.event, push.tag, push.branch) == ("tag", "hello-2.1", None)
    body = payload("gitlab-tag-push-hook")
    headers = signed("gitlab", body, "Tag Push Hook")
    push = verify_and_parse("gitlab", headers, body, SECRET, url_secret_ok=False)
    assert (push.event, push.tag) == ("tag", "diaspora-1.0.0")
    assert push.commit == "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"


@pytest.mark.parametrize("forge", ["github", "gitea", "forgejo", "gitlab", "custom"])
def test_a_wrong_secret_is_refused(forge):
    body = payload("github-push")
    headers = signed(forge, body, "push", secret="not-the-secret")
    with pytest.raises(DeliveryError) as caught:
        verify_and_parse(forge, headers, body, SECRET, url_secret_ok=False)
    assert caught.value.status == 403 and "Bad signature" in caught.value.text
    # a signature is checked even where the URL carried the secret
    with pytest.raises(DeliveryError):
        verify_and_parse(forge, headers, body, SECRET, url_secret_ok=True)


def test_a_body_changed_after_signing_is_refused():
    body = payload("github-push")
    headers = signed("github", body, "push")
    with pytest.raises(DeliveryError, match="Bad signature"):
        verify_and_parse(
            "github", headers, body.replace(b"main", b"evil"), SECRET, url_secret_ok=False
        )


def test_unsigned_deliveries():
    body = payload("github-push")
    headers = {"X-GitHub-Event": "push"}
    with pytest.raises(DeliveryError, match="Missing signature") as caught:
        verify_and_parse("github", headers, body, SECRET, url_secret_ok=False)
    assert caught.value.status == 403
    # Copr's URL form carries the secret: no signature needed
    assert verify_and_parse("github", headers, body, SECRET, url_secret_ok=True).event == "push"
    # no secret generated yet
    with pytest.raises(DeliveryError, match="no webhook secret yet"):
        verify_and_parse("github", signed("github", body, "push"), body, None, url_secret_ok=False)


def test_custom_token_as_bearer():
    headers = {"Authorization": f"Bearer {SECRET}", "X-Copr-Delivery": "ci-42"}
    push = verify_and_parse("custom", headers, b"", SECRET, url_secret_ok=False)
    assert (push.event, push.delivery_id) == ("custom", "ci-42")
    # GitHub pointed at a custom URL says hello first: that builds nothing
    pinged = {**headers, "X-GitHub-Event": "ping"}
    assert verify_and_parse("custom", pinged, b"{}", SECRET, url_secret_ok=False).event == "ping"
    with pytest.raises(DeliveryError):
        verify_and_parse("custom", {"Authorization": "Bearer x"}, b"", SECRET, url_secret_ok=False)


def test_ping_other_events_and_unreadable_payloads():
    body = b'{"zen": "Keep it logically awesome."}'
    push = verify_and_parse(
        "github", signed("github", body, "ping"), body, SECRET, url_secret_ok=False
    )
    assert push.event == "ping"
    push = verify_and_parse(
        "github", signed("github", body, "issues"), body, SECRET, url_secret_ok=False
    )
    assert push.event == "issues"
    # GitHub's "create" repeats a tag's push event: it builds nothing
    push = verify_and_parse(
        "gitea", signed("gitea", body, "create"), body, SECRET, url_secret_ok=False
    )
    assert push.event == "create"
    for bad in (b"not json", b"[1]", b'{"ref": "refs/heads/x"}'):
        with pytest.raises(DeliveryError) as caught:
            verify_and_parse(
                "github", signed("github", bad, "push"), bad, SECRET, url_secret_ok=False
            )
        assert caught.value.status == 400


def test_a_branch_deletion_builds_nothing():
    body = payload("github-push").replace(
        b'"after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"', b'"after": "' + b"0" * 40 + b'"'
    )
    push = verify_and_parse(
        "github", signed("github", body, "push"), body, SECRET, url_secret_ok=False
    )
    assert push.deleted and push.commit is None
    source = {"clone_url": "https://github.com/Codertocat/Hello-World.git"}
    assert not push_builds(push, "hello", source, None)


def test_normalize_url():
    assert normalize_url("https://user:pw@GitHub.COM/o/r.git/") == "https://github.com/o/r"
    assert normalize_url("git@github.com:o/r.git") == "ssh://github.com/o/r"
    assert normalize_url("HTTPS://example.com:8443/o/r") == "https://example.com:8443/o/r"


URL = "https://github.com/o/r"


def push(**fields) -> Push:
    fields.setdefault("urls", (normalize_url(URL),))
    return Push("github", "d", fields.pop("event", "push"), **fields)


def test_which_packages_a_branch_push_builds():
    on_main = push(branch="main", commit="c" * 40, changed_files=frozenset({"pkg/a.spec"}))
    assert push_builds(on_main, "a", {"clone_url": URL + ".git"}, None)
    assert push_builds(on_main, "a", {"clone_url": URL, "committish": "main"}, None)
    assert not push_builds(on_main, "a", {"clone_url": URL, "committish": "devel"}, None)
    assert not push_builds(on_main, "a", {"clone_url": "https://github.com/o/other"}, None)
    # the pushed commits must touch the package's subdirectory (Copr's rule)
    assert push_builds(on_main, "a", {"clone_url": URL, "subdirectory": "pkg"}, None)
    assert not push_builds(on_main, "a", {"clone_url": URL, "subdirectory": "doc"}, None)
    # a package named in the URL: only that one
    assert not push_builds(on_main, "a", {"clone_url": URL}, "b")


def test_which_packages_a_tag_builds():
    tagged = push(event="tag", tag="hello-1.2-3", commit="c" * 40)
    source = {"clone_url": URL}
    assert push_builds(tagged, "hello", source, None)
    assert not push_builds(tagged, "world", source, None)
    assert push_builds(tagged, "world", source, "world")  # named in the URL
    assert not push_builds(push(event="tag", tag="v1.0"), "hello", source, None)
    assert forges._tag_names_package("python-foo_1.0", "python-foo")
    assert not forges._tag_names_package("hello-beta", "hello")
