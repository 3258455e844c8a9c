"""The OpenAPI 3.0.3 description of the /api/ surface, served at /api/openapi.json.

Plain Python data built by small helpers. The HTML pages `/api/` and `/api/new/` are not part of
it. Paths carry the trailing slash of the route table (the server also answers without it and with
doubled slashes, spec A3). `chroot_names` are the configured chroots: each one is also a form field
of create and new_build (`<chroot>=y`, spec §1.4), so the description depends on the config.
The fields that the operations declare (`operations.py`) take their text and limits from there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from . import forms, operations
from .states import State

Schema = dict[str, Any]

OPENAPI_VERSION = "3.0.3"
ERROR = "#/components/schemas/Error"
NAME_PATTERN = "^[A-Za-z0-9_.-]+$"
# A new project's name: NAME_PATTERN, but not only digits and not starting with a dot (spec A16).
NEW_NAME_PATTERN = "^([A-Za-z_-]|[0-9]+[A-Za-z_.-])[A-Za-z0-9_.-]*$"
BUILD_ID_PATTERN = "^[0-9]{1,19}$"
# Chroot states (spec §3.3); a build's state is one of them, or `unknown` when it has no chroot.
CHROOT_STATES = [state.value for state in State]
BUILD_STATES = [*CHROOT_STATES, "unknown"]
STATE_CODES = [state.code for state in State]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CHECKBOX_TEXT = (
    "Checkbox (spec §1.3): absent, empty or exactly `false` is false, any other value is true. "
    "Clients send `y`."
)
ERROR_TEXT = {
    400: "Bad input: validation, unknown form keys, malformed body.",
    401: "Missing, invalid or expired API credentials.",
    403: "Authenticated, but not allowed to do this.",
    404: "No such user, project, build or chroot (or URL).",
    409: "Conflict with the current state (a name taken, nothing left to cancel).",
    413: "Request body or upload too large.",
    429: "Too many wrong API credentials from this client address: retry after the "
    "`Retry-After` header's seconds (credentials verified recently still pass).",
    500: "Internal server error (a real fault; details only in the server log).",
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


# ---------------------------------------------------------------- schema helpers


def string(description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "string", **extra}, description)


def nullable_string(description: str | None = None) -> Schema:
    return string(description, nullable=True)


def integer(description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "integer", **extra}, description)


def nullable_integer(description: str | None = None) -> Schema:
    return integer(description, nullable=True)


def boolean(description: str | None = None) -> Schema:
    return _described({"type": "boolean"}, description)


def array(items: Schema, description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "array", "items": items, **extra}, description)


def string_map(description: str | None = None, values: Schema | None = None) -> Schema:
    """A JSON object whose keys are free (chroot names) and whose values are all alike."""
    return _described(
        {"type": "object", "additionalProperties": values or {"type": "string"}}, description
    )


def obj(properties: dict[str, Schema], description: str | None = None) -> Schema:
    """An object in which every listed property is present (extra keys are allowed)."""
    return _described(
        {"type": "object", "required": list(properties), "properties": properties}, description
    )


def ok(properties: dict[str, Schema] | None = None, description: str | None = None) -> Schema:
    """A success body: `"output": "ok"` plus the given properties (spec A1)."""
    return obj({"output": {"type": "string", "enum": ["ok"]}, **(properties or {})}, description)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def checkbox(description: str | None = None) -> Schema:
    return string(f"{description} {CHECKBOX_TEXT}" if description else CHECKBOX_TEXT, example="y")


def empty_or_integer(minimum: int, maximum: int, description: str) -> Schema:
    """A form number that clients may also send as an empty string ("not given", spec §4.6)."""
    return {
        "description": description,
        "anyOf": [
            {"type": "integer", "minimum": minimum, "maximum": maximum},
            {"type": "string", "maxLength": 0},
        ],
    }


def _described(schema: Schema, description: str | None) -> Schema:
    if description:
        schema["description"] = description
    return schema


# ---------------------------------------------------------------- operation helpers


def parameter(where: str, name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


def path_param(name: str, description: str, schema: Schema) -> Schema:
    return parameter("path", name, description, schema)


def query_param(name: str, description: str, schema: Schema) -> Schema:
    return parameter("query", name, description, schema)


USERNAME = path_param(
    "username", "The owner's user name.", string(pattern=NAME_PATTERN, maxLength=100)
)
PROJECT = path_param("project", "The project name.", string(pattern=NAME_PATTERN, maxLength=100))
BUILD_ID = path_param(
    "build_id",
    "A build id: ASCII decimal digits, at most 2^63-1 (anything else is 404).",
    string(pattern=BUILD_ID_PATTERN),
)
OWNER_PROJECT = [USERNAME, PROJECT]
PAGE = [
    query_param("offset", "Skip this many results (default 0).", integer(minimum=0)),
    query_param(
        "limit", "At most this many results (default 100).", integer(minimum=1, maximum=1000)
    ),
]


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def form_body(
    fields: dict[str, Schema], required: tuple[str, ...] = (), description: str | None = None
) -> Schema:
    """A POST body as an HTML form, urlencoded or multipart (spec A4); unknown keys are 400."""
    schema: Schema = {"type": "object", "properties": fields, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    body: Schema = {
        "required": bool(required),
        "content": {media: {"schema": schema} for media in FORM_TYPES},
    }
    return _described(body, description)


def operation(
    summary: str,
    ok_schema: Schema,
    errors: tuple[int, ...],
    *,
    operation_id: str,
    login: bool = False,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    description: str | None = None,
) -> Schema:
    """One operation: its 200 body, and the shared Error body for each status it can fail with."""
    statuses = sorted({*errors, 500, *((401, 429) if login else ())})
    responses: Schema = {"200": {"description": "Success.", "content": json_content(ok_schema)}}
    for status in statuses:
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    op: Schema = {"operationId": operation_id, "summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    op["security"] = [{"basicAuth": []}] if login else []
    return op


# ---------------------------------------------------------------- shared schemas

PROJECT_FIELDS: dict[str, Schema] = {
    "name": string("Project name."),
    "description": nullable_string(),
    "instructions": nullable_string("The owner's installation notes."),
    "additional_repos": nullable_string("Extra repositories used while building, space separated."),
    "yum_repos": string_map("Chroot name -> URL of its published repository (spec A7)."),
    "gpg_key_url": nullable_string(
        "URL of the project's public signing key (pubkey.gpg); null when the server does not sign."
    ),
    "persistent": boolean(),
    "unlisted_on_hp": boolean(),
    "auto_prune": boolean(),
    "prune_days": integer("Days before a superseded succeeded build is pruned."),
    "keep_last": integer("Finished builds kept per package and chroot (0: unlimited)."),
    "failed_log_days": integer("Days the results and logs of failed builds are kept."),
    "disk_usage": integer("Bytes of the project's build results and imports."),
}

COMPONENT_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "The one error shape of the API (spec A2).",
        "required": ["output", "error", "errcode"],
        "properties": {
            "output": {"type": "string", "enum": ["notok"]},
            "error": string("Human readable text."),
            "errcode": string("Machine readable code, e.g. `not_found`."),
        },
    },
    "BuildState": string("Overall build state (spec A9).", enum=BUILD_STATES),
    "ChrootState": string("State of one build chroot (spec §3.3).", enum=CHROOT_STATES),
    "Project": obj(PROJECT_FIELDS, "A project as listed (spec §4.1)."),
    "ProjectDetail": obj(
        {
            **PROJECT_FIELDS,
            "last_modified": nullable_integer(
                "Unix time the newest build with a succeeded or skipped chroot ended."
            ),
            "auto_createrepo": boolean(),
            "build_enable_net": boolean(),
            "package_retention": {
                "type": "object",
                "description": "Package name -> its own retention settings (auto_prune, "
                "prune_days, keep_last, failed_log_days; null: the project's value).",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "nullable": True},
                },
            },
        },
        "A project in detail (spec §4.2, A6).",
    ),
    "MonitorBuild": obj(
        {
            "id": integer(),
            "pkg_name": nullable_string("Package name read from the SRPM."),
            "pkg_version": nullable_string("`version-release` read from the SRPM."),
            "status": integer("Historic state code (spec §3.3).", enum=STATE_CODES, nullable=True),
            "state": ref("BuildState"),
            "canceled": boolean(),
            "repos": nullable_string(),
            "submitted_on": integer(),
            "started_on": nullable_integer(),
            "ended_on": nullable_integer(),
            "results": nullable_string(),
            "memory_reqs": integer(),
            "timeout": integer(),
            "src_pkg": string("The SRPM URL."),
            "built_packages": array(string(), "`name version` per built binary package."),
        },
        "A build as listed by monitor (spec §4.5).",
    ),
    "MonitorPackage": obj(
        {
            "pkg_name": string(),
            "pkg_version": nullable_string(),
            "results": string_map(
                "Chroot name -> `[build_id, state]` of the newest non-canceled build of this "
                "package there, or null if never built there (spec A12).",
                values={
                    "type": "array",
                    "nullable": True,
                    "minItems": 2,
                    "maxItems": 2,
                    "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                },
            ),
        },
    ),
    "SearchResult": obj(
        {"username": string(), "coprname": string(), "description": nullable_string()}
    ),
}

OPENAPI_DOCUMENT_SCHEMA = obj(
    {"openapi": string(), "info": {"type": "object"}, "paths": {"type": "object"}},
    "This document.",
)
AUTH_CHECK_OK = ok(description="The credentials are valid.")
PROJECT_LIST_OK = ok({"repos": array(ref("Project"))})
SEARCH_OK = ok({"repos": array(ref("SearchResult"))})
BUILD_OK = ok(
    {
        "ids": array(integer(), "One build per submitted SRPM, in order.", minItems=1),
        "id": integer("The first of `ids`."),
        "message": string(),
    }
)
MESSAGE_OK = ok({"message": string()})
BUILDROOT_OK = ok({"buildroot_pkgs": nullable_string("Packages always in the buildroot.")})


# ---------------------------------------------------------------- request bodies

HIDDEN_ID = string("Historic hidden form field; ignored.")


def form_field(operation_: operations.Operation, name: str, note: str = "") -> Schema:
    """A declared field of an operation as a form field (every value is text)."""
    field = operation_.field_named(name)
    text = f"{field.help} {note}".strip()
    kind = field.kind
    if kind is operations.Kind.FLAG:
        return checkbox(text)
    if kind is operations.Kind.NUMBER:
        return empty_or_integer(field.low, field.high, text)
    if kind is operations.Kind.NAME:
        return string(text, pattern=NEW_NAME_PATTERN, maxLength=100)
    if kind is operations.Kind.TEXT:
        return string(text, maxLength=field.limit)
    if kind is operations.Kind.PACKAGES:
        return string(text, maxLength=forms.BUILDROOT_PKGS_LIMIT)
    if kind in (operations.Kind.REPOS, operations.Kind.SRPM_URLS, operations.Kind.NAMES):
        return string(f"{text} Whitespace separated.")
    return string(text)


def chroot_fields(chroot_names: list[str], where: str) -> dict[str, Schema]:
    """`<chroot>=y` checkboxes and the `chroots` convenience field (space-separated names)."""
    # Chroot names are `[a-z0-9_.-]` (config.CHROOT_RE): only the dot needs escaping, and
    # re.escape's `\-` is not valid in every regex dialect that reads this document.
    one_of = "|".join(name.replace(".", r"\.") for name in chroot_names)
    fields = {
        "chroots": string(
            f"Chroot names, space separated, beside the `<chroot>=y` fields ({where}).",
            pattern=rf"^\s*(({one_of})(\s+|$))*$" if chroot_names else r"^\s*$",
        )
    }
    fields.update({name: checkbox(f"Build in `{name}` ({where}).") for name in chroot_names})
    return fields


def create_fields(chroot_names: list[str]) -> dict[str, Schema]:
    create = operations.CREATE_PROJECT
    return {
        "name": form_field(
            create,
            "name",
            "1-100 of `A-Za-z0-9_.-`, not only digits, not starting with `.`.",
        ),
        "description": form_field(create, "description"),
        "instructions": form_field(create, "instructions"),
        "repos": form_field(create, "repos"),
        "initial_pkgs": form_field(create, "initial_pkgs"),
        "disable_createrepo": checkbox("Turn automatic createrepo off."),
        "auto_createrepo": form_field(
            create, "auto_createrepo", "Default true; `disable_createrepo` wins when both are sent."
        ),
        "build_enable_net": form_field(create, "build_enable_net", "Default true."),
        "unlisted_on_hp": form_field(create, "unlisted_on_hp"),
        "persistent": form_field(create, "persistent", "Else 403."),
        "auto_prune": form_field(create, "auto_prune", "Default true."),
        "use_bootstrap_container": form_field(create, "use_bootstrap_container"),
        **{key: form_field(create, key) for key in forms.RETENTION_LIMITS},
        "homepage": form_field(create, "homepage"),
        "contact": form_field(create, "contact"),
        "username": string("Sent by historic clients; ignored (the URL names the owner)."),
        "id": HIDDEN_ID,
        "group_id": string("Historic hidden form field; ignored."),
        **chroot_fields(chroot_names, "at least one chroot must be chosen"),
    }


def build_fields(chroot_names: list[str]) -> dict[str, Schema]:
    """The new_build fields other than `pkgs` (new_build_upload takes the same)."""
    submit = operations.SUBMIT_BUILD
    return {
        "memory_reqs": form_field(submit, "memory_reqs", "Default 2048."),
        "timeout": form_field(submit, "timeout", "Empty: the server's default."),
        "enable_net": form_field(submit, "enable_net"),
        "build_enable_net": checkbox("Same as `enable_net`, which wins when both are sent."),
        "background": form_field(submit, "background"),
        "package_name": string(),
        "source_type": string("Sent by some historic clients, e.g. `srpm_link`."),
        "username": string("Sent by historic clients; ignored."),
        "id": HIDDEN_ID,
        **chroot_fields(chroot_names, "enabled in the project; none chosen: all of them"),
    }


def new_build_body(chroot_names: list[str]) -> Schema:
    fields = {
        "pkgs": string(
            "SRPM URLs (http or https, ending in `.src.rpm` or `.nosrc.rpm`), whitespace "
            "separated, at most 100; one build per URL.",
            minLength=1,
        ),
        **build_fields(chroot_names),
    }
    return form_body(fields, required=("pkgs",))


def upload_body(chroot_names: list[str]) -> Schema:
    schema: Schema = {
        "type": "object",
        "required": ["pkgs"],
        "additionalProperties": False,
        "properties": {
            "pkgs": string(
                "The SRPM file; its file name must end in `.src.rpm` or `.nosrc.rpm`.",
                format="binary",
            ),
            **build_fields(chroot_names),
        },
    }
    media = {"schema": schema, "encoding": {"pkgs": {"contentType": "application/x-rpm"}}}
    return {"required": True, "content": {"multipart/form-data": media}}


_EDIT = operations.EDIT_PROJECT
MODIFY_FIELDS: dict[str, Schema] = {
    "description": form_field(_EDIT, "description"),
    "instructions": form_field(_EDIT, "instructions"),
    "repos": form_field(_EDIT, "repos", "Repeated keys are joined."),
    "disable_createrepo": checkbox("Turn automatic createrepo off."),
    "auto_createrepo": form_field(
        _EDIT, "auto_createrepo", "`disable_createrepo` wins when both are sent."
    ),
    "build_enable_net": form_field(_EDIT, "build_enable_net"),
    "unlisted_on_hp": form_field(_EDIT, "unlisted_on_hp"),
    "auto_prune": form_field(_EDIT, "auto_prune"),
    **{key: form_field(_EDIT, key) for key in forms.RETENTION_LIMITS},
    "persistent": form_field(_EDIT, "persistent", "Else 403."),
    "use_bootstrap_container": form_field(_EDIT, "use_bootstrap_container"),
    "homepage": form_field(_EDIT, "homepage"),
    "contact": form_field(_EDIT, "contact"),
    "username": string("Sent by historic clients; ignored."),
    "id": HIDDEN_ID,
    "chroots": string("Accepted for historic clients; ignored."),
}


# ---------------------------------------------------------------- the document


def submit_build(summary: str, operation_id: str, body: Schema) -> Schema:
    """new_build and new_build_upload: the same answer and errors, another body."""
    return operation(
        summary,
        BUILD_OK,
        (400, 403, 404, 409, 413),
        operation_id=operation_id,
        login=True,
        parameters=OWNER_PROJECT,
        body=body,
    )


def api_paths(chroot_names: list[str]) -> dict[str, Schema]:
    chroot = path_param(
        "chroot",
        "A chroot name (`<os>-<version>-<arch>`) enabled in the project.",
        string(enum=list(chroot_names)) if chroot_names else string(),
    )
    search_params = [
        query_param("project", "The text to search for (wins over the path).", string()),
        *PAGE,
    ]
    build_detail = operation(
        "Build detail",
        ok(
            {
                "status": ref("BuildState"),
                "project": string(),
                "owner": string(),
                "results": nullable_string("The project's results URL."),
                "built_pkgs": array(string(), "`name version` per built package.", nullable=True),
                "src_version": nullable_string("`version-release` read from the SRPM."),
                "chroots": string_map("Chroot name -> state.", values=ref("ChrootState")),
                "submitted_on": integer(),
                "started_on": nullable_integer(),
                "ended_on": nullable_integer(),
                "src_pkg": string("The SRPM URL."),
                "submitted_by": string(),
                "results_by_chroot": string_map("Chroot name -> URL of its result directory."),
                "fail_reasons": string_map("Failed chroot name -> one line (spec A20)."),
                "memory_reqs": integer(),
                "timeout": integer("Seconds."),
                "enable_net": boolean(),
            }
        ),
        (404,),
        operation_id="build_detail",
        parameters=[BUILD_ID],
    )
    return {
        "/api/auth_check/": {
            "get": operation(
                "Check API credentials", AUTH_CHECK_OK, (), operation_id="auth_check", login=True
            ),
            "post": operation(
                "Check API credentials (as copr-cli does before a build)",
                AUTH_CHECK_OK,
                (),
                operation_id="auth_check_post",
                login=True,
            ),
        },
        "/api/openapi.json": {
            "get": operation(
                "This OpenAPI description",
                OPENAPI_DOCUMENT_SCHEMA,
                (),
                operation_id="openapi",
            )
        },
        "/api/chroots/": {
            "get": operation(
                "Chroots this server offers",
                ok({"chroots": string_map("Chroot name -> the builder that serves it.")}),
                (),
                operation_id="chroots",
            )
        },
        "/api/disk_usage/": {
            "get": operation(
                "Disk used by build results, in all and per project",
                ok(
                    {
                        "total": integer("Bytes of every project's results and imports."),
                        "projects": array(
                            obj(
                                {
                                    "owner": string(),
                                    "project": string(),
                                    "disk_usage": integer("Bytes."),
                                }
                            ),
                            "Largest first.",
                        ),
                    }
                ),
                (),
                operation_id="disk_usage",
            )
        },
        "/api/coprs/": {
            "get": operation(
                "List a user's projects (`?username=`), or search (`?search=`)",
                {"anyOf": [PROJECT_LIST_OK, SEARCH_OK]},
                (400,),
                operation_id="list_projects_query",
                description="With `username`, that user's projects (an unknown user has none: "
                "200 with `repos: []`); else with `search`, a search answer as from "
                "/api/coprs/search/; else 400.",
                parameters=[
                    query_param("username", "Whose projects to list.", string()),
                    query_param("search", "Search instead (as /api/coprs/search/).", string()),
                    *PAGE,
                ],
            )
        },
        "/api/coprs/search/": {
            "get": operation(
                "Search projects (`?project=`)",
                SEARCH_OK,
                (400,),
                operation_id="search_query",
                parameters=search_params,
            )
        },
        "/api/coprs/search/{query}/": {
            "get": operation(
                "Search projects",
                SEARCH_OK,
                (400, 404),
                operation_id="search",
                parameters=[
                    path_param("query", "The text to search for.", string(minLength=1)),
                    *search_params,
                ],
            )
        },
        "/api/coprs/build_status/{build_id}/": {
            "get": operation(
                "Build status",
                ok({"status": ref("BuildState")}),
                (404,),
                operation_id="build_status",
                login=True,
                parameters=[BUILD_ID],
            )
        },
        "/api/coprs/build_detail/{build_id}/": {"get": build_detail},
        "/api/coprs/build/{build_id}/": {"get": {**build_detail, "operationId": "build"}},
        "/api/coprs/cancel_build/{build_id}/": {
            "post": operation(
                "Cancel a build",
                ok({"status": string("What happened, e.g. `Build canceled`.")}),
                (403, 404, 409),
                operation_id="cancel_build",
                login=True,
                parameters=[BUILD_ID],
            )
        },
        "/api/coprs/{username}/": {
            "get": operation(
                "List a user's projects",
                PROJECT_LIST_OK,
                (404,),
                operation_id="list_projects",
                description="An unknown user has no projects: 200 with `repos: []`.",
                parameters=[
                    USERNAME,
                    query_param("username", "Wins over the path (historic).", string()),
                ],
            )
        },
        "/api/coprs/{username}/new/": {
            "post": operation(
                "Create a project",
                MESSAGE_OK,
                (400, 403, 409, 413),
                operation_id="create_project",
                login=True,
                parameters=[USERNAME],
                body=form_body(create_fields(chroot_names), required=("name",)),
            )
        },
        "/api/coprs/{username}/{project}/detail/": {
            "get": operation(
                "Project detail",
                ok({"detail": ref("ProjectDetail"), "repos": array(ref("ProjectDetail"))}),
                (404,),
                operation_id="project_detail",
                parameters=OWNER_PROJECT,
            )
        },
        "/api/coprs/{username}/{project}/delete/": {
            "post": operation(
                "Delete a project",
                MESSAGE_OK,
                (400, 403, 404, 413),
                operation_id="delete_project",
                login=True,
                parameters=OWNER_PROJECT,
                body=form_body(
                    {"verify": string("Must be exactly `yes`.", enum=["yes"]), "id": HIDDEN_ID},
                    required=("verify",),
                ),
            )
        },
        "/api/coprs/{username}/{project}/monitor/": {
            "get": operation(
                "Project monitor: newest build per package and chroot",
                ok(
                    {
                        "chroots": array(string(), "The project's chroots, sorted."),
                        "builds": array(ref("MonitorBuild")),
                        "packages": array(ref("MonitorPackage")),
                    }
                ),
                (400, 404),
                operation_id="monitor",
                description="`packages` holds, per package and enabled chroot, the newest "
                "non-canceled build there; `builds` lists the builds it refers to. With `offset` "
                "or `limit`, `builds` is instead that page of the whole history, newest first.",
                parameters=[*OWNER_PROJECT, *PAGE],
            )
        },
        "/api/coprs/{username}/{project}/new_build/": {
            "post": submit_build(
                "Submit builds from SRPM URLs", "new_build", new_build_body(chroot_names)
            )
        },
        "/api/coprs/{username}/{project}/new_build_upload/": {
            "post": submit_build(
                "Submit a build from an uploaded SRPM",
                "new_build_upload",
                upload_body(chroot_names),
            )
        },
        "/api/coprs/{username}/{project}/modify/": {
            "post": operation(
                "Modify a project (only the fields sent change)",
                ok(
                    {
                        "description": nullable_string(),
                        "instructions": nullable_string(),
                        "repos": nullable_string(),
                    }
                ),
                (400, 403, 404, 413),
                operation_id="modify_project",
                login=True,
                parameters=OWNER_PROJECT,
                body=form_body(MODIFY_FIELDS),
            )
        },
        "/api/coprs/{username}/{project}/modify/{chroot}/": {
            "post": operation(
                "Set a chroot's buildroot packages",
                BUILDROOT_OK,
                (400, 403, 404, 413),
                operation_id="modify_chroot",
                login=True,
                parameters=[*OWNER_PROJECT, chroot],
                body=form_body(
                    {
                        "buildroot_pkgs": form_field(operations.EDIT_CHROOT, "buildroot_pkgs"),
                        "id": HIDDEN_ID,
                    }
                ),
            )
        },
        "/api/coprs/{username}/{project}/detail/{chroot}/": {
            "get": operation(
                "Chroot detail",
                BUILDROOT_OK,
                (404,),
                operation_id="chroot_detail",
                parameters=[*OWNER_PROJECT, chroot],
            )
        },
    }


def error_responses() -> dict[str, Schema]:
    """The shared error answers of both documents (`#/components/responses/Error<status>`)."""
    return {
        f"Error{status}": {
            "description": text,
            "content": json_content({"$ref": ERROR}),
            **({"headers": RETRY_AFTER} if status == 429 else {}),
        }
        for status, text in ERROR_TEXT.items()
    }


def basic_auth(description: str) -> dict[str, Schema]:
    """The security scheme of both documents: HTTP basic with the API credentials."""
    return {"basicAuth": {"type": "http", "scheme": "basic", "description": description}}


def v1_paths(plugin_paths: Mapping[str, Any] | None) -> dict[str, Any]:
    """The plugins' paths that belong to /api/openapi.json (those under /api_3/ belong to
    /api_3/openapi.json)."""
    return {k: v for k, v in (plugin_paths or {}).items() if not k.startswith("/api_3/")}


def openapi_document(
    base_url: str, chroot_names: list[str], plugin_paths: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.0.3 description of this server's /api/ surface, with the path items of
    the plugins' routes (`plugins.api_paths`).

    A fresh copy each time: the parts shared between operations are module constants.
    """
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "copr_lite API v1",
            "version": "1",
            "description": "The legacy Fedora Copr API v1 as copr_lite serves it. Every URL "
            "also answers without its trailing slash and with doubled slashes. POST bodies may "
            "also be a flat JSON object with the same keys.",
        },
        "servers": [{"url": base_url}],
        "paths": {**api_paths(sorted(chroot_names)), **v1_paths(plugin_paths)},
        "components": {
            "schemas": COMPONENT_SCHEMAS,
            "responses": error_responses(),
            "securitySchemes": basic_auth("`api_login:api_token` from ~/.config/copr."),
        },
    }
    return copy.deepcopy(document)
