"""The OpenAPI 3.0.3 description of the /api_3/ surface, served at /api_3/openapi.json.

Request bodies of changes are built from the operations' declared fields (`operations.py`),
renamed to API v3's spelling, so the description says what the service functions accept.
Paths are the route table's, as the clients request them; the server also answers them with
a trailing slash (and without one where the route has it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from . import operations
from .openapi import (
    BUILD_ID_PATTERN,
    BUILD_STATES,
    CHROOT_STATES,
    NAME_PATTERN,
    NEW_NAME_PATTERN,
    OPENAPI_DOCUMENT_SCHEMA,
    OPENAPI_VERSION,
    Schema,
    array,
    basic_auth,
    boolean,
    error_responses,
    integer,
    json_content,
    nullable_integer,
    nullable_string,
    obj,
    operation,
    path_param,
    query_param,
    string,
    string_map,
)
from .sources import SOURCE_TYPES

V3_PROJECT_NAMES = {"repos": "additional_repos", "build_enable_net": "enable_net"}
V3_CHROOT_NAMES = {"buildroot_pkgs": "additional_packages", "repos": "additional_repos"}
WORDS: Schema = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def field_schema(field: operations.Field) -> Schema:
    """A declared field as a JSON body property."""
    kind = field.kind
    if kind is operations.Kind.FLAG:
        return boolean(field.help)
    if kind is operations.Kind.NUMBER:
        return integer(field.help, minimum=field.low, maximum=field.high)
    if kind is operations.Kind.NAME:
        return string(field.help, pattern=NEW_NAME_PATTERN, maxLength=100)
    if kind is operations.Kind.TEXT:
        return string(f"{field.help} At most {field.limit // 1024} KiB.", nullable=True)
    if kind is operations.Kind.SHORT_TEXT:
        return string(field.help, nullable=True)
    return {**WORDS, "description": f"{field.help} A whitespace-separated string or a list."}


def body_of(
    operation_: operations.Operation,
    renames: dict[str, str],
    skip: frozenset[str] = frozenset(),
    extra: dict[str, Schema] | None = None,
    required: tuple[str, ...] = (),
) -> Schema:
    """A JSON body with the operation's fields in v3 spelling; other keys are ignored."""
    properties = {
        renames.get(f.name, f.name): field_schema(f)
        for f in operation_.fields
        if f.name not in skip
    }
    properties.update(extra or {})
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"required": bool(required), "content": json_content(schema)}


OWNER = path_param("ownername", "The owner's user name.", string(pattern=NAME_PATTERN))
PROJECT = path_param("projectname", "The project name.", string(pattern=NAME_PATTERN))
Q_OWNER = {**query_param("ownername", "The owner's user name.", string()), "required": True}
Q_PROJECT = {**query_param("projectname", "The project name.", string()), "required": True}
Q_CHROOT = {**query_param("chrootname", "A chroot name.", string()), "required": True}
Q_BUILD = {
    **query_param("build_id", "A build id.", string(pattern=BUILD_ID_PATTERN)),
    "required": True,
}
BUILD_ID = path_param("build_id", "A build id (anything else is 404).", string())
PAGE = [
    query_param("offset", "Skip this many (default 0).", integer(minimum=0)),
    query_param("limit", "At most this many (default 100).", integer(minimum=1, maximum=1000)),
    query_param("order", "Ignored: newest first.", string()),
    query_param("order_type", "Ignored: newest first.", string()),
]
WITH_BUILDS = [
    query_param("with_latest_build", "Include the newest build (True/False).", string()),
    query_param(
        "with_latest_succeeded_build", "Include the newest succeeded build (True/False).", string()
    ),
]


def listed(item: Schema) -> Schema:
    return obj(
        {
            "items": array(item),
            "meta": obj(
                {
                    "limit": integer(),
                    "offset": integer(),
                    "order": string(),
                    "order_type": string(),
                }
            ),
        }
    )


PROJECT_SCHEMA = obj(
    {
        "id": integer(),
        "name": string(),
        "ownername": string(),
        "full_name": string("`owner/name`."),
        "description": nullable_string(),
        "instructions": nullable_string(),
        "homepage": nullable_string(),
        "contact": nullable_string(),
        "persistent": boolean(),
        "unlisted_on_hp": boolean(),
        "auto_prune": boolean(),
        "enable_net": boolean(),
        "additional_repos": array(string()),
        "chroot_repos": string_map("Chroot name -> URL of its repository."),
        "gpg_key_url": nullable_string(),
    },
    "A project.",
)
BUILD_SCHEMA = obj(
    {
        "id": integer(),
        "state": string(enum=BUILD_STATES),
        "ownername": string(),
        "projectname": string(),
        "project_dirname": string(),
        "repo_url": string("The project's results URL."),
        "source_package": obj(
            {"name": nullable_string(), "version": nullable_string(), "url": nullable_string()}
        ),
        "submitted_on": integer(),
        "started_on": nullable_integer(),
        "ended_on": nullable_integer(),
        "submitter": nullable_string(),
        "chroots": array(string()),
        "is_background": boolean(),
    },
    "A build.",
)
BUILD_CHROOT_SCHEMA = obj(
    {
        "name": string(),
        "state": string(enum=CHROOT_STATES),
        "started_on": nullable_integer(),
        "ended_on": nullable_integer(),
        "result_url": nullable_string("Its results directory, once it started."),
    }
)
NEVRA = obj(
    {
        "name": string(),
        "epoch": integer(),
        "version": string(),
        "release": string(),
        "arch": string(),
    }
)
PROJECT_CHROOT_SCHEMA = obj(
    {
        "mock_chroot": string(),
        "ownername": string(),
        "projectname": string(),
        "additional_packages": array(string()),
        "additional_repos": array(string()),
    }
)
BUILD_CONFIG_SCHEMA = obj(
    {
        "chroot": string(),
        "repos": array(obj({"id": string(), "name": string(), "baseurl": string()})),
        "additional_packages": array(string()),
        "enable_net": boolean(),
    }
)
PACKAGE_SCHEMA = obj(
    {
        "id": integer(),
        "name": string(),
        "ownername": string(),
        "projectname": string(),
        "source_type": string(),
        "source_dict": {"type": "object"},
        "auto_rebuild": boolean(),
        "timeout": {**integer(), "nullable": True},
        "chroot_denylist": array(string()),
        "builds": obj(
            {
                "latest": {**BUILD_SCHEMA, "nullable": True},
                "latest_succeeded": {**BUILD_SCHEMA, "nullable": True},
            }
        ),
    }
)
PERMISSIONS_SCHEMA = obj(
    {
        "permissions": string_map(
            "User name -> role -> state (`request` or `approved`).",
            values=string_map(values=string(enum=["request", "approved"])),
        )
    }
)
ANY_OBJECT: Schema = {"type": "object"}
# A package source's settings (sources.parse_source), as build/create/<type> and
# package/add take them; package/add also takes the custom ones with a "script_" prefix.
SOURCE_FIELDS: dict[str, Schema] = {
    "clone_url": string("scm: http, https or git URL of the repository."),
    "committish": string("scm: branch, tag or commit; empty: the default branch."),
    "subdirectory": string("scm: where the spec is in the repository."),
    "spec": string("scm: the spec's path in the subdirectory; empty: the one there."),
    "scm_type": string("scm: git.", enum=["git"]),
    "source_build_method": string("scm: how the SRPM is made.", enum=["rpkg", "make_srpm"]),
    "script": string("custom: the script that leaves a spec and sources, or an SRPM."),
    "chroot": string("custom: the chroot the script is meant for (informational)."),
    "builddeps": string("custom: packages the script needs (informational)."),
    "resultdir": string("custom: where the script leaves its results."),
    "repos": string("custom: repositories of the script's dependencies (kept)."),
}
SCRIPT_FIELDS: dict[str, Schema] = {
    f"script_{key}": SOURCE_FIELDS[key] for key in ("chroot", "builddeps", "resultdir", "repos")
}


def v3_paths(chroot_names: list[str]) -> dict[str, Schema]:
    ops = operations
    projects = [OWNER, PROJECT]
    build_body_extra: dict[str, Schema] = {
        "ownername": string(),
        "projectname": string(),
        "project_dirname": nullable_string("Ignored: projects have one directory."),
    }
    not_supported = operation(
        "Not supported by this server (400)",
        ANY_OBJECT,
        (400,),
        operation_id="not_supported",
        parameters=projects,
    )
    return {
        "/api_3/": {
            "get": operation(
                "API version",
                obj({"version": string()}),
                (),
                operation_id="v3_home",
            )
        },
        "/api_3/openapi.json": {
            "get": operation(
                "This OpenAPI description", OPENAPI_DOCUMENT_SCHEMA, (), operation_id="v3_openapi"
            )
        },
        "/api_3/auth-check": {
            "get": operation(
                "Who the credentials belong to",
                obj({"id": integer(), "name": string()}),
                (),
                operation_id="v3_auth_check",
                login=True,
            )
        },
        "/api_3/project": {
            "get": operation(
                "A project",
                PROJECT_SCHEMA,
                (400, 404),
                operation_id="v3_project_get",
                parameters=[Q_OWNER, Q_PROJECT],
            )
        },
        "/api_3/project/list": {
            "get": operation(
                "Projects of an owner (`ownername`), or of everyone, newest first",
                listed(PROJECT_SCHEMA),
                (400,),
                operation_id="v3_project_list",
                parameters=[query_param("ownername", "Whose projects.", string()), *PAGE],
            )
        },
        "/api_3/project/search": {
            "get": operation(
                "Search projects",
                listed(PROJECT_SCHEMA),
                (400,),
                operation_id="v3_project_search",
                parameters=[
                    {**query_param("query", "Words, or `owner/name`.", string()), "required": True},
                    *PAGE,
                ],
            )
        },
        "/api_3/project/add/{ownername}": {
            "post": operation(
                ops.CREATE_PROJECT.summary,
                PROJECT_SCHEMA,
                (400, 403, 404, 409, 413),
                operation_id="v3_project_add",
                login=True,
                parameters=[
                    OWNER,
                    query_param("exist_ok", "True: answer an existing project as is.", string()),
                ],
                body=body_of(
                    ops.CREATE_PROJECT,
                    V3_PROJECT_NAMES,
                    skip=frozenset({"initial_pkgs"}),
                    required=("name", "chroots"),
                ),
            )
        },
        "/api_3/project/edit/{ownername}/{projectname}": {
            "put": operation(
                ops.EDIT_PROJECT.summary,
                PROJECT_SCHEMA,
                (400, 403, 404, 413),
                operation_id="v3_project_edit",
                login=True,
                parameters=projects,
                body=body_of(ops.EDIT_PROJECT, {"build_enable_net": "enable_net"}),
            )
        },
        "/api_3/project/delete/{ownername}/{projectname}": {
            "delete": operation(
                ops.DELETE_PROJECT.summary,
                PROJECT_SCHEMA,
                (400, 403, 404, 413),
                operation_id="v3_project_delete",
                login=True,
                parameters=projects,
                body={
                    "required": True,
                    "content": json_content(
                        obj({"verify": boolean("Must be true.")}, "Confirm the deletion.")
                    ),
                },
            )
        },
        "/api_3/project/fork/{ownername}/{projectname}": {
            "post": {**not_supported, "operationId": "v3_project_fork"}
        },
        "/api_3/project/permissions/get/{ownername}/{projectname}": {
            "get": operation(
                "Everyone's roles on a project (its owner and admins only)",
                PERMISSIONS_SCHEMA,
                (403, 404),
                operation_id="v3_permissions_get",
                login=True,
                parameters=projects,
            )
        },
        "/api_3/project/permissions/set/{ownername}/{projectname}": {
            "put": operation(
                ops.SET_PERMISSIONS.summary,
                PERMISSIONS_SCHEMA,
                (400, 403, 404, 413),
                operation_id="v3_permissions_set",
                login=True,
                parameters=projects,
                body={
                    "required": True,
                    "content": json_content(
                        string_map(
                            "User name -> role (`builder`, `admin`) -> state (`nothing`, "
                            "`request`, `approved`).",
                            values=string_map(
                                values=string(enum=["nothing", "request", "approved"])
                            ),
                        )
                    ),
                },
            )
        },
        "/api_3/project/permissions/request/{ownername}/{projectname}": {
            "put": operation(
                ops.REQUEST_PERMISSIONS.summary,
                PERMISSIONS_SCHEMA,
                (400, 404, 413),
                operation_id="v3_permissions_request",
                login=True,
                parameters=projects,
                body=body_of(ops.REQUEST_PERMISSIONS, {}),
            )
        },
        "/api_3/project/permissions/can_build_in/{who}/{ownername}/{projectname}": {
            "get": operation(
                "Whether a user may build in a project",
                obj({"who": string(), "can_build_in": boolean()}),
                (404,),
                operation_id="v3_can_build_in",
                login=True,
                parameters=[path_param("who", "A user name.", string()), *projects],
            )
        },
        "/api_3/project/regenerate-repos/{ownername}/{projectname}": {
            "put": operation(
                ops.REGENERATE_REPOS.summary,
                PROJECT_SCHEMA,
                (403, 404),
                operation_id="v3_regenerate_repos",
                login=True,
                parameters=projects,
            )
        },
        "/api_3/build/{build_id}": {
            "get": operation(
                "A build", BUILD_SCHEMA, (404,), operation_id="v3_build_get", parameters=[BUILD_ID]
            )
        },
        "/api_3/build/list": {
            "get": operation(
                "A project's builds, newest first",
                listed(BUILD_SCHEMA),
                (400, 404),
                operation_id="v3_build_list",
                parameters=[
                    Q_OWNER,
                    Q_PROJECT,
                    query_param("packagename", "Only this package's builds.", string()),
                    query_param("status", "Only builds in this state.", string()),
                    *PAGE,
                ],
            )
        },
        "/api_3/build/source-chroot/{build_id}": {
            "get": operation(
                "The SRPM import of a build",
                obj({"name": string(), "state": string(), "result_url": string()}),
                (404,),
                operation_id="v3_build_source_chroot",
                parameters=[BUILD_ID],
            )
        },
        "/api_3/build/built-packages/{build_id}": {
            "get": operation(
                "The packages a build published, per chroot",
                string_map("Chroot -> its packages.", values=obj({"packages": array(NEVRA)})),
                (404,),
                operation_id="v3_build_built_packages",
                parameters=[BUILD_ID],
            )
        },
        "/api_3/build/check-before-build": {
            "post": operation(
                "May the caller build in the project? (before an upload)",
                obj({"message": string()}),
                (400, 403, 404, 413),
                operation_id="v3_check_before_build",
                login=True,
                body=body_of(
                    ops.SUBMIT_BUILD, {}, skip=frozenset({"pkgs"}), extra=build_body_extra
                ),
            )
        },
        "/api_3/build/create/url": {
            "post": operation(
                ops.SUBMIT_BUILD.summary,
                listed(BUILD_SCHEMA),
                (400, 403, 404, 409, 413),
                operation_id="v3_build_create_url",
                login=True,
                body=body_of(
                    ops.SUBMIT_BUILD,
                    {},
                    extra=build_body_extra,
                    required=("ownername", "projectname", "pkgs"),
                ),
            )
        },
        "/api_3/build/create/upload": {
            "post": operation(
                "Build an uploaded SRPM",
                BUILD_SCHEMA,
                (400, 403, 404, 409, 413),
                operation_id="v3_build_create_upload",
                login=True,
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["json", "pkgs"],
                                "properties": {
                                    "json": string(
                                        "A JSON object: ownername, projectname and the build "
                                        "options of /api_3/build/create/url/ but pkgs."
                                    ),
                                    "pkgs": string("The SRPM file.", format="binary"),
                                },
                            }
                        }
                    },
                },
            )
        },
        "/api_3/build/create/{source_type}": {
            "post": operation(
                "Build from a git repository (scm) or a custom script; other types are 400",
                BUILD_SCHEMA,
                (400, 403, 404, 409, 413),
                operation_id="v3_build_create_other",
                login=True,
                parameters=[
                    path_param("source_type", "scm or custom.", string(enum=list(SOURCE_TYPES)))
                ],
                body=body_of(
                    ops.SUBMIT_BUILD,
                    {},
                    skip=frozenset({"pkgs"}),
                    extra={**build_body_extra, **SOURCE_FIELDS},
                    required=("ownername", "projectname"),
                ),
            )
        },
        "/api_3/build/cancel/{build_id}": {
            "put": operation(
                ops.CANCEL_BUILD.summary,
                BUILD_SCHEMA,
                (403, 404, 409),
                operation_id="v3_build_cancel",
                login=True,
                parameters=[BUILD_ID],
            )
        },
        "/api_3/build/delete/{build_id}": {
            "delete": operation(
                ops.DELETE_BUILDS.summary,
                BUILD_SCHEMA,
                (403, 404, 409),
                operation_id="v3_build_delete",
                login=True,
                parameters=[BUILD_ID],
            )
        },
        "/api_3/build/delete/list": {
            "delete": operation(
                ops.DELETE_BUILDS.summary,
                obj({"builds": array(integer())}),
                (400, 403, 404, 409, 413),
                operation_id="v3_build_delete_list",
                login=True,
                body={
                    "required": True,
                    "content": json_content(obj({"builds": array(integer(minimum=1), minItems=1)})),
                },
            )
        },
        "/api_3/build-chroot": {
            "get": operation(
                "A build in one chroot",
                BUILD_CHROOT_SCHEMA,
                (400, 404),
                operation_id="v3_build_chroot_get",
                parameters=[Q_BUILD, Q_CHROOT],
            )
        },
        "/api_3/build-chroot/list": {
            "get": operation(
                "A build's chroots",
                listed(BUILD_CHROOT_SCHEMA),
                (400, 404),
                operation_id="v3_build_chroot_list",
                parameters=[Q_BUILD, *PAGE],
            )
        },
        "/api_3/build-chroot/built-packages": {
            "get": operation(
                "The packages a build published in one chroot",
                obj({"packages": array(NEVRA)}),
                (400, 404),
                operation_id="v3_build_chroot_built_packages",
                parameters=[Q_BUILD, Q_CHROOT],
            )
        },
        "/api_3/build-chroot/build-config": {
            "get": operation(
                "How a build was built in one chroot",
                BUILD_CONFIG_SCHEMA,
                (400, 404),
                operation_id="v3_build_chroot_build_config",
                parameters=[Q_BUILD, Q_CHROOT],
            )
        },
        "/api_3/project-chroot": {
            "get": operation(
                "A project's chroot settings",
                PROJECT_CHROOT_SCHEMA,
                (400, 404),
                operation_id="v3_project_chroot_get",
                parameters=[Q_OWNER, Q_PROJECT, Q_CHROOT],
            )
        },
        "/api_3/project-chroot/build-config": {
            "get": operation(
                "How a project's chroot builds (what copr-cli mock-config renders)",
                BUILD_CONFIG_SCHEMA,
                (400, 404),
                operation_id="v3_project_chroot_build_config",
                parameters=[Q_OWNER, Q_PROJECT, Q_CHROOT],
            )
        },
        "/api_3/project-chroot/edit/{ownername}/{projectname}/{chrootname}": {
            "put": operation(
                ops.EDIT_CHROOT.summary,
                PROJECT_CHROOT_SCHEMA,
                (400, 403, 404, 413),
                operation_id="v3_project_chroot_edit",
                login=True,
                parameters=[
                    *projects,
                    path_param(
                        "chrootname",
                        "A chroot of the project.",
                        string(enum=chroot_names) if chroot_names else string(),
                    ),
                ],
                body=body_of(
                    ops.EDIT_CHROOT,
                    V3_CHROOT_NAMES,
                    extra={
                        "reset_fields": array(
                            string(), "Fields to empty: additional_packages, additional_repos."
                        )
                    },
                ),
            )
        },
        "/api_3/mock-chroots/list": {
            "get": operation(
                "The chroots this server offers",
                string_map("Chroot name -> a comment (its builder)."),
                (),
                operation_id="v3_mock_chroots",
            )
        },
        "/api_3/package": {
            "get": operation(
                "A package of a project",
                PACKAGE_SCHEMA,
                (400, 404),
                operation_id="v3_package_get",
                parameters=[
                    Q_OWNER,
                    Q_PROJECT,
                    {**query_param("packagename", "The package name.", string()), "required": True},
                    *WITH_BUILDS,
                ],
            )
        },
        "/api_3/package/list": {
            "get": operation(
                "A project's packages: every package name it has built",
                listed(PACKAGE_SCHEMA),
                (400, 404),
                operation_id="v3_package_list",
                parameters=[Q_OWNER, Q_PROJECT, *WITH_BUILDS, *PAGE],
            )
        },
        "/api_3/package/add/{ownername}/{projectname}/{package_name}/{source_type}": {
            "post": operation(
                ops.SAVE_PACKAGE.summary,
                PACKAGE_SCHEMA,
                (400, 403, 404, 409, 413),
                operation_id="v3_package_add",
                login=True,
                parameters=[
                    *projects,
                    path_param("package_name", "The package name.", string()),
                    path_param("source_type", "scm or custom.", string(enum=list(SOURCE_TYPES))),
                ],
                body=body_of(ops.SAVE_PACKAGE, {}, extra={**SOURCE_FIELDS, **SCRIPT_FIELDS}),
            )
        },
        "/api_3/package/edit/{ownername}/{projectname}/{package_name}/{source_type}": {
            "post": operation(
                ops.SAVE_PACKAGE.summary,
                PACKAGE_SCHEMA,
                (400, 403, 404, 409, 413),
                operation_id="v3_package_edit",
                login=True,
                parameters=[
                    *projects,
                    path_param("package_name", "The package name.", string()),
                    path_param("source_type", "scm or custom.", string(enum=list(SOURCE_TYPES))),
                ],
                body=body_of(ops.SAVE_PACKAGE, {}, extra={**SOURCE_FIELDS, **SCRIPT_FIELDS}),
            )
        },
        "/api_3/package/reset": {
            "put": operation(
                ops.RESET_PACKAGE.summary,
                PACKAGE_SCHEMA,
                (400, 403, 404, 413),
                operation_id="v3_package_reset",
                login=True,
                body=package_body(),
            )
        },
        "/api_3/package/build": {
            "post": operation(
                "Build a package from its source (its build options are the defaults)",
                BUILD_SCHEMA,
                (400, 403, 404, 409, 413),
                operation_id="v3_package_build",
                login=True,
                body=body_of(
                    ops.SUBMIT_BUILD,
                    {},
                    skip=frozenset({"pkgs"}),
                    extra={**build_body_extra, "package_name": string()},
                    required=("ownername", "projectname", "package_name"),
                ),
            )
        },
        "/api_3/package/delete": {
            "delete": operation(
                ops.DELETE_PACKAGE.summary,
                PACKAGE_SCHEMA,
                (400, 403, 404, 409, 413),
                operation_id="v3_package_delete",
                login=True,
                body=package_body(),
            )
        },
        "/api_3/monitor": {
            "get": operation(
                "The newest build of each package in each chroot",
                obj(
                    {
                        "output": string(enum=["ok"]),
                        "message": string(),
                        "packages": array(
                            obj(
                                {
                                    "name": string(),
                                    "chroots": string_map(
                                        "Chroot -> its newest build there.",
                                        values=obj(
                                            {
                                                "build_id": integer(),
                                                "state": string(enum=CHROOT_STATES),
                                                "pkg_version": nullable_string(),
                                            }
                                        ),
                                    ),
                                }
                            )
                        ),
                    }
                ),
                (400, 404),
                operation_id="v3_monitor",
                parameters=[
                    Q_OWNER,
                    Q_PROJECT,
                    query_param("project_dirname", "Ignored.", string()),
                    query_param(
                        "additional_fields[]",
                        "url_build_log and/or url_backend_log.",
                        string(enum=["url_build_log", "url_backend_log"]),
                    ),
                ],
            )
        },
        "/api_3/rpmrepo/{ownername}/{dirname}/{name_version}/": {
            "get": operation(
                "The project's repositories as dnf5's copr plugin reads them",
                obj(
                    {
                        "results_url": string(),
                        "repos": {"type": "object"},
                        "directories": {"type": "object"},
                        "dependencies": array(ANY_OBJECT),
                    }
                ),
                (404,),
                operation_id="v3_rpmrepo",
                parameters=[
                    OWNER,
                    path_param("dirname", "The project name.", string()),
                    path_param("name_version", "e.g. fedora-41 (any).", string()),
                ],
            )
        },
        "/api_3/module/build/{ownername}/{projectname}": {
            "post": {**not_supported, "operationId": "v3_module_build"}
        },
        "/api_3/webhook/generate/{ownername}/{projectname}": {
            "post": operation(
                ops.GENERATE_WEBHOOK_SECRET.summary,
                obj(
                    {
                        "id": integer(),
                        "name": string(),
                        "ownername": string(),
                        "full_name": string(),
                        "webhook_secret": string("The new secret (a UUID)."),
                    }
                ),
                (403, 404),
                operation_id="v3_webhook_generate",
                login=True,
                parameters=projects,
            )
        },
    }


def package_body() -> Schema:
    return {
        "required": True,
        "content": json_content(
            obj({"ownername": string(), "projectname": string(), "package_name": string()})
        ),
    }


def openapi_v3_document(
    base_url: str, chroot_names: list[str], plugin_paths: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.0.3 description of this server's /api_3/ surface, with the plugins'
    paths under /api_3/ (`plugins.api_paths`); a fresh copy."""
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "copr_lite API v3",
            "version": "3",
            "description": "The Fedora Copr API v3 as copr-cli 2.x, python-copr 2.x and dnf's "
            "copr plugins use it. Every URL also answers with a trailing slash. Bodies "
            "are JSON objects; keys not described are ignored.",
        },
        "servers": [{"url": base_url}],
        "paths": {
            **v3_paths(sorted(chroot_names)),
            **{k: v for k, v in (plugin_paths or {}).items() if k.startswith("/api_3/")},
        },
        "components": {
            "responses": error_responses(),
            "schemas": {
                "Error": {
                    "type": "object",
                    "description": "The one error shape: the clients show `error`.",
                    "required": ["error"],
                    "properties": {"error": string(), "errcode": string()},
                }
            },
            "securitySchemes": basic_auth("`login:token` from ~/.config/copr."),
        },
    }
    return copy.deepcopy(document)
