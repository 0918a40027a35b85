"""The versioned data store: :class:`Store` and its Dolt backend."""

from __future__ import annotations

from platform_kit.config import Config
from platform_kit.store.base import Store


def open_store(config: Config) -> Store:
    """The project's Dolt database on the configured server, or on the local one 'up' started.

    The password comes from DOLT_PASSWORD (never from platform.yaml). With ``dolt.remote``, the
    database is a clone of that remote (made by :meth:`Store.create_database`).
    """
    from platform_kit.endpoints import dolt_endpoint, dolt_password
    from platform_kit.store.dolt import DoltStore

    endpoint = dolt_endpoint(config)
    return DoltStore(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=dolt_password(config),
        database=config.dolt.database,
        main_branch=config.dolt.main_branch,
        remote=config.dolt.remote,
    )


__all__ = ["Store", "open_store"]
