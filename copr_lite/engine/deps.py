"""The parts of the server the engine works with, handed to each engine part explicitly."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from ..builders import BuilderRegistry
from ..config import Config
from ..db import Database
from ..publisher import Publisher


@dataclass(frozen=True)
class EngineDeps:
    """Settings, database, plugin manager (hooks), builders and the results tree."""

    config: Config
    db: Database
    pm: pluggy.PluginManager
    builders: BuilderRegistry
    publisher: Publisher
