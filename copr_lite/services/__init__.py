"""The service functions of the operations declared in `operations.py`: what API v1, API v3
and the web UI all call to change anything.

Each looks the project (or build) up, checks the caller's permission, parses the request's
values with the operation's declaration and writes, in one database transaction (one thread
hop), then tells the dispatcher and the publisher. `precheck`, where offered, is the calling
API's own check of the request (v1 refuses keys it does not know), run in that transaction
after the permission check, so errors come in the order of spec A17: 404, 403, then 400.

One module per area (projects, builds, packages, webhooks, search) beside `common`, all
re-exported here: callers write `services.create_project`.

Each takes a `Services` first: the database, the settings, the build queue (the dispatcher)
and the publisher, built once by app.py (keys.SERVICES), so the services never reach into
the web application.
"""

from .builds import (
    cancel_build,
    delete_builds,
    rebuild,
    remove_builds,
    submit_builds,
    submit_builds_in,
)
from .common import (
    BuildQueue,
    Found,
    Precheck,
    Services,
    allowed_in,
    check_allowed,
    chroot_names,
    find_project,
)
from .packages import (
    build_package,
    delete_package,
    reset_package,
    save_package,
    set_package_retention,
    submit_source_build,
)
from .projects import (
    DELETE_WAIT,
    create_project,
    delete_project,
    edit_chroot,
    edit_project,
    find_chroot,
    get_permissions,
    regenerate_repos,
    request_permissions,
    set_permissions,
)
from .search import search_terms
from .webhooks import (
    UNSUPPORTED_FORGES,
    DeliveryResult,
    Incoming,
    PackageBuild,
    generate_webhook_secret,
    receive_webhook,
)

__all__ = [
    "DELETE_WAIT",
    "UNSUPPORTED_FORGES",
    "BuildQueue",
    "DeliveryResult",
    "Found",
    "Incoming",
    "PackageBuild",
    "Precheck",
    "Services",
    "allowed_in",
    "build_package",
    "cancel_build",
    "check_allowed",
    "chroot_names",
    "create_project",
    "delete_builds",
    "delete_package",
    "delete_project",
    "edit_chroot",
    "edit_project",
    "find_chroot",
    "find_project",
    "generate_webhook_secret",
    "get_permissions",
    "rebuild",
    "receive_webhook",
    "regenerate_repos",
    "remove_builds",
    "request_permissions",
    "reset_package",
    "save_package",
    "search_terms",
    "set_package_retention",
    "set_permissions",
    "submit_builds",
    "submit_builds_in",
    "submit_source_build",
]
