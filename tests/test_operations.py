"""The declared operations: one parse for form strings and JSON values alike."""

from __future__ import annotations

import pytest

from copr_lite import forms, operations
from copr_lite.errors import Forbidden, PayloadTooLarge
from copr_lite.models import User

ALICE = User(1, "alice", False, 0)
ADMIN = User(2, "admin", True, 0)


def test_form_strings_and_json_values_parse_alike():
    create = operations.CREATE_PROJECT
    from_form = create.parse(
        {"name": "p", "chroots": "a b", "repos": "https://x/ https://y/", "auto_prune": ""},
        ALICE,
    )
    from_json = create.parse(
        {
            "name": "p",
            "chroots": ["a", "b"],
            "repos": ["https://x/", "https://y/"],
            "auto_prune": False,
        },
        ALICE,
    )
    assert (
        from_form
        == from_json
        == {
            "name": "p",
            "chroots": ["a", "b"],
            "repos": "https://x/ https://y/",
            "auto_prune": False,
        }
    )


def test_defaults_only_when_asked():
    create = operations.CREATE_PROJECT
    assert "build_enable_net" not in create.parse({"name": "p"}, ALICE)
    parsed = create.parse({"name": "p"}, ALICE, defaults=True)
    assert parsed["build_enable_net"] is True and parsed["persistent"] is False


def test_every_field_error_is_collected_and_the_first_raised():
    with pytest.raises(forms.ValidationError) as caught:
        operations.SUBMIT_BUILD.parse(
            {"pkgs": "ftp://x/y.src.rpm", "memory_reqs": 1, "timeout": "soon"}, ALICE
        )
    assert caught.value.field == "pkgs"
    assert set(caught.value.errors) == {"pkgs", "memory_reqs", "timeout"}
    with pytest.raises(forms.ValidationError, match="name: This field is required"):
        operations.CREATE_PROJECT.parse({}, ALICE)
    with pytest.raises(forms.ValidationError, match="Must be a list of strings"):
        operations.CREATE_PROJECT.parse({"name": "p", "chroots": [1]}, ALICE)
    with pytest.raises(forms.ValidationError, match="whole number"):
        operations.SUBMIT_BUILD.parse({"timeout": True}, ALICE)
    with pytest.raises(PayloadTooLarge):
        operations.EDIT_PROJECT.parse({"description": "x" * (forms.TEXT_LIMIT + 1)}, ALICE)


def test_admin_only_fields():
    with pytest.raises(Forbidden, match="Only admins may create persistent projects"):
        operations.CREATE_PROJECT.parse({"name": "p", "persistent": "y"}, ALICE)
    assert operations.CREATE_PROJECT.parse({"name": "p", "persistent": True}, ADMIN)["persistent"]
    # false is no attempt to set it
    assert not operations.EDIT_PROJECT.parse({"persistent": False}, ALICE)["persistent"]


def test_every_operation_names_its_fields_once():
    names = [op.name for op in operations.OPERATIONS]
    assert len(names) == len(set(names))
    for op in operations.OPERATIONS:
        fields = [f.name for f in op.fields]
        assert len(fields) == len(set(fields)), op.name
        assert op.summary and all(f.help for f in op.fields), op.name
