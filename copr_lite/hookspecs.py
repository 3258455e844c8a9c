"""Every hook of copr_lite, one docstring each. Plugins implement them with
`from copr_lite import hookimpl`.

Rules:
- Event hooks return nothing. They may be plain functions, or return an awaitable, which
  the core awaits (one helper, `plugins.fire`). Each implementation is called on its own:
  one that raises is logged with its plugin's name, and the others still run.
- Builders are not chosen by a hook: plugins register them by name, and copr-lite.ini maps
  each chroot to a builder name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from .builders import BuilderRegistry, ChrootResult
    from .commands import CommandRegistry
    from .config import Config, PluginSettingsRegistry
    from .migrations import MigrationRegistry
    from .models import Build
    from .states import State

hookspec = pluggy.HookspecMarker("copr_lite")

# ---------------------------------------------------------------- registration


@hookspec
def register_settings(registry: PluginSettingsRegistry) -> None:
    """Declare the ``[plugin:NAME]`` settings sections this plugin reads.

    Called once per app (and by ``config check``), before ``register_builders``. The core
    then checks every ``[plugin:...]`` section of the settings file against the
    declarations: an undeclared section, an unknown key or a bad value stops the server
    with one line naming it.

    :param registry: call ``registry.add("NAME", Settings)``, where ``Settings`` is a
        frozen dataclass whose fields are made with ``copr_lite.plugin_setting(default,
        help)``; read the values with ``config.plugin_settings("NAME", Settings)``.
    :return: None.
    """


@hookspec
def register_builders(registry: BuilderRegistry, config: Config) -> None:
    """Add builders to the registry, each under its own name.

    Called once per app, while it is being created.

    :param registry: call ``registry.add(builder)`` for each builder this plugin offers.
    :param config: the server's settings (``config.plugin_settings(name, Settings)`` for
        a plugin's own ``[plugin:NAME]`` section, declared in ``register_settings``).
    """


@hookspec
def register_migrations(registry: MigrationRegistry) -> None:
    """Declare the database migrations of this plugin's own tables.

    Called whenever the database is opened (by the server, and by commands that use it).
    A plugin's steps are numbered from 1 on their own; the plugin's version is kept in the
    ``plugin_schema_versions`` table, and its steps run after the core's, each in its own
    transaction. Never edit a released step; append one.

    :param registry: call ``registry.add("NAME", steps)`` once, with ``steps`` a sequence of
        ``copr_lite.migrations.Migration(version, description, sql)``.
    :return: None.
    """


@hookspec
def register_commands(registry: CommandRegistry) -> None:
    """Add commands to the command line (``python -m copr_lite NAME``).

    Called each time the command line starts, with the plugins of the settings file named by
    ``--config`` (the built-in plugins only, when those cannot be loaded). Commands reach the
    database through ``copr_lite.cli.read_with(args, fn)`` and
    ``copr_lite.cli.database(config)`` with ``cli.write(conn, fn, *args)``.

    :param registry: call ``registry.add(copr_lite.commands.Command(...))`` (with
        ``after="NAME"`` to list it right after another command in ``--help``); a command's
        ``run(args)`` returns the exit status, ``copr_lite.cli.fail(message)`` stops it with
        one line and status 1. A name the core or another plugin uses is an error.
    :return: None.
    """


@hookspec
def register_api_paths(paths: dict[str, Any]) -> None:
    """Describe this plugin's ``/api/`` routes in the OpenAPI document (/api/openapi.json);
    paths under ``/api_3/`` go into /api_3/openapi.json instead.

    Called for each request of a document, so a blocked plugin's routes and description
    go together.

    :param paths: set ``paths["/api/NAME/"] = path item`` (OpenAPI 3.0 path items; the
        helpers of ``copr_lite.openapi`` such as ``operation`` and ``ok`` make them).
    :return: None.
    """


@hookspec
def startup(app: web.Application) -> Any:
    """The server has opened its database and is about to accept requests.

    :param app: the aiohttp application; its shared objects are under ``copr_lite.keys``.
    :return: None, or an awaitable the core awaits before serving.
    """


# ---------------------------------------------------------------- build lifecycle events


@hookspec
def build_submitted(build: Build) -> Any:
    """A build was stored by new_build or new_build_upload (its chroots are `importing`).

    :param build: the build as stored (a ``Build``; each ``build.chroots[i].status`` is a
        ``State``).
    :return: None or an awaitable.
    """


@hookspec
def chroot_started(build: Build, chroot: str) -> Any:
    """A builder took one chroot of a build (the chroot is now `running`).

    :param build: the build.
    :param chroot: the chroot name, e.g. ``fedora-40-x86_64``.
    :return: None or an awaitable.
    """


@hookspec
def chroot_finished(build: Build, chroot: str, result: ChrootResult | None, state: State) -> Any:
    """One chroot of a build reached a terminal state.

    :param build: the build.
    :param chroot: the chroot name.
    :param result: what the builder reported; a build over its timeout gives a failed
        result whose ``fail_reason`` says so. None when the builder never returned a result:
        canceled, skipped, no such builder, or an internal error.
    :param state: the stored state, a ``State`` (a ``str`` enum, so ``state == "failed"``
        holds too): ``SUCCEEDED``, ``FAILED``, ``CANCELED`` or ``SKIPPED``.
    :return: None or an awaitable.
    """


@hookspec
def build_finished(build: Build) -> Any:
    """Every chroot of a build reached a terminal state.

    :param build: the build with its final chroot states.
    :return: None or an awaitable.
    """


@hookspec
def repository_published(owner: str, project: str, chroot: str, seconds: float) -> Any:
    """A chroot's repository metadata was rewritten (createrepo_c, and its signature).

    Fired after each run: a build published or withdrawn, a deletion, a prune, a new chroot.
    One run may cover several requests that piled up while the previous one worked.

    :param owner: the project's owner.
    :param project: the project's name.
    :param chroot: the chroot name, e.g. ``fedora-40-x86_64``.
    :param seconds: how long the run took (createrepo_c and signing).
    :return: None or an awaitable.
    """


# ---------------------------------------------------------------- web


@hookspec
def register_routes(app: web.Application) -> None:
    """Add HTTP routes (and shutdown callbacks) to the server.

    Called once per app while it is being created, after the built-in routes are added and
    the builders registered; the database is not open yet (``startup`` fires when it is).
    Routes under ``/api/`` answer errors with the JSON error body; for routes under another
    prefix, call ``copr_lite.middlewares.json_errors_under(app, "/PREFIX")``.

    :param app: the aiohttp application: add routes with ``app.router.add_get(...)``; its
        shared objects are under ``copr_lite.keys`` (``CONFIG``, ``BUILDERS``; ``DB`` from
        startup on).
    :return: None.
    """
