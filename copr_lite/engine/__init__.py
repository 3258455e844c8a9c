"""The build engine: from a stored build to its published results.

A build id's path through it, module by module:

- loop.py: `Dispatcher`, the one background task that owns every other; services tell it
  about new builds (`submitted`), cancels (`cancel_build`) and new projects
  (`prepare_repos`). Its rounds start imports and chroot runs.
- importer.py: the SRPM import, `importing` -> `pending`.
- scheduler.py: which pending chroots start next (pure: limits and owner turns).
- run.py: one chroot run, `pending` -> `starting` -> `running` -> a terminal state, as a
  script of named steps; jobs.py makes the builder's BuildJob; publishing goes through
  publisher.py.
- events.py: the lifecycle hooks fired on the way; projects.py: a project's empty
  repositories and signing key, made in side tasks.

Only loop.py's `Dispatcher` is used from outside (app.py, services, views).
"""

from .loop import Dispatcher

__all__ = ["Dispatcher"]
