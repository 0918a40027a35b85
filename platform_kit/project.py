"""The composition root: the one place that builds a project's backends from its Config.

A :class:`Project` builds each backend on first use, once: the Dolt store, the model registry
and the release log (one MLflow client between them), the Docker engine and the image registry
client. Operations never build their own; they receive the backends they use as arguments, the
way httpx's ``Client`` receives its transport, so a test can hand them others::

    project = Project.for_command(config, Needs({Service.DOLT}, start_local=True))
    data.merge(config, project.store, "sheets/customers")

Each CLI command declares the services it :class:`Needs` and whether it may start local ones;
:meth:`Project.for_command` checks them (and starts them where allowed) before the command runs.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from platform_kit import endpoints
from platform_kit.config import Config
from platform_kit.endpoints import Service, ServiceStatus
from platform_kit.errors import ServiceError
from platform_kit.retry import retry

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from platform_kit.release.images import Engine
    from platform_kit.release.registry import Registry
    from platform_kit.store.base import Store
    from platform_kit.tracking.registry import ModelRegistry
    from platform_kit.tracking.releases import ReleaseLog
    from platform_kit.tracking.rest import MlflowRest

# A server that is starting, or a blip on the network, gets about 1.5 s before a command gives up.
_HEALTH_ATTEMPTS = 3
_HEALTH_DELAY = 0.5
_NAMES = {Service.DOLT: "Dolt", Service.MLFLOW: "MLflow"}


@dataclass(frozen=True, init=False)
class Needs:
    """What a command needs before it runs.

    ``start_local``: the command may start the local servers it needs (on a developer machine,
    for a project whose platform.yaml names no server). Commands that only read never do: they
    fail with "run 'platform-kit services up'" instead. Under GitHub Actions nothing is started.
    """

    services: frozenset[Service]
    start_local: bool

    def __init__(self, services: Collection[Service] = (), *, start_local: bool = False) -> None:
        object.__setattr__(self, "services", frozenset(services))
        object.__setattr__(self, "start_local", start_local)


NOTHING = Needs()


class Project:
    """A project's backends, built lazily from its :class:`Config`.

    Any backend can be handed in instead (a fake store, a Docker client of a test), the way
    httpx's ``Client(transport=...)`` takes its transport.
    """

    def __init__(
        self,
        config: Config,
        *,
        start_local: bool = False,
        store: Store | None = None,
        models: ModelRegistry | None = None,
        releases: ReleaseLog | None = None,
        engine: Engine | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.config = config
        self.start_local = start_local
        self._ready: set[Service] = set()  # checked by require(): not asked again
        given = {
            "store": store,
            "models": models,
            "releases": releases,
            "engine": engine,
            "registry": registry,
        }
        for name, backend in given.items():
            if backend is not None:
                self.__dict__[name] = backend  # what cached_property would have stored

    @classmethod
    def for_command(cls, config: Config, needs: Needs = NOTHING) -> Project:
        """The project of one CLI command, its services checked (and started where allowed).

        Raises:
            ConfigError: under GitHub Actions, a needed server is not configured (it would be
                started locally).
            ServiceError: a needed server does not answer (or a local one is not running and the
                command may not start it).
        """
        project = cls(config, start_local=needs.start_local)
        project.require(needs.services)
        return project

    def require(self, services: Collection[Service]) -> None:
        """Make sure each of ``services`` answers; start local ones if this project may.

        Raises:
            ConfigError, ServiceError: as :meth:`for_command`.
        """
        wanted = [s for s in Service if s in services and s not in self._ready]
        if not wanted:
            return
        endpoints.refuse_local_in_actions(self.config, wanted)
        local = [s for s in wanted if endpoints.is_local(self.config, s)]
        if local and self.start_local:
            from platform_kit import services as processes  # the only place a command starts one

            processes.services_up(self.config, only=local)
        for service in wanted:
            status = _checked(self.config, service)
            if not status.healthy:
                raise _not_answering(self.config, service, status)
            self._ready.add(service)

    # -- the backends, each built on first use

    @cached_property
    def mlflow_uri(self) -> str:
        return endpoints.mlflow_uri(self.config)

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        """Made on first use: reads that go through :attr:`mlflow_rest` never import mlflow."""
        from platform_kit.tracking.client import lazy_client

        return lazy_client(self.mlflow_uri)

    @cached_property
    def mlflow_rest(self) -> MlflowRest | None:
        """MLflow's REST API (None where MLflow's client must be used: see tracking/rest.py)."""
        from platform_kit.tracking.rest import rest_api

        return rest_api(self.mlflow_uri)

    @cached_property
    def store(self) -> Store:
        """The project's Dolt database (``dolt.database``) on its server."""
        from platform_kit.store import open_store

        return open_store(self.config)

    @cached_property
    def models(self) -> ModelRegistry:
        """The project's models in MLflow, seen through the release alias (``release.alias``)."""
        from platform_kit.tracking.mlflow_registry import MlflowModelRegistry

        return MlflowModelRegistry(
            self.mlflow_client,
            rest=self.mlflow_rest,
            project=self.config.project,
            experiment=self.config.mlflow.experiment,
            alias=self.config.model_alias,
        )

    def models_with_alias(self, alias: str | None) -> ModelRegistry:
        """:attr:`models` seen through another alias (``None``: the configured one)."""
        if not alias or alias == self.models.alias:
            return self.models
        view = copy.copy(self.models)  # same client and caches; only the alias differs
        view.alias = alias
        return view

    @cached_property
    def releases(self) -> ReleaseLog:
        """The release records (MLflow experiment ``platform-kit-releases``)."""
        from platform_kit.tracking.releases import ReleaseLog

        return ReleaseLog(self.mlflow_client, rest=self.mlflow_rest)

    @cached_property
    def engine(self) -> Engine:
        """The Docker engine of the environment (``DOCKER_HOST`` or the local socket).

        Raises:
            ServiceError: no engine answers.
        """
        from platform_kit.release.images import Engine

        return Engine()

    @cached_property
    def registry(self) -> Registry:
        """The registry behind ``release.image``.

        Raises:
            ConfigError: platform.yaml has no 'release' section.
        """
        from platform_kit.release.registry import Registry

        return Registry(self.config.require_release().image)

    def get_engine(self) -> Engine:
        """:attr:`engine` as a call, for operations that need an engine only sometimes."""
        return self.engine


class _Unanswered(Exception):
    def __init__(self, status: ServiceStatus) -> None:
        super().__init__(f"{status.url or status.name}: {status.detail}")
        self.status = status


def _checked(config: Config, service: Service) -> ServiceStatus:
    """The service's status; one that does not answer (yet) is asked again, with backoff."""

    def ask() -> ServiceStatus:
        status = endpoints.service_status(config, service)
        if not status.healthy and status.url and not _refused(status):
            raise _Unanswered(status)
        return status

    try:
        return retry(
            ask,
            transient=lambda exc: isinstance(exc, _Unanswered),
            what=f"check {_NAMES[service]}",
            attempts=_HEALTH_ATTEMPTS,
            first_delay=_HEALTH_DELAY,
        )
    except _Unanswered as exc:
        return exc.status


def _refused(status: ServiceStatus) -> bool:
    """The server answered and said no (a login, an HTTP error): asking again will not help."""
    return "Access denied" in status.detail or status.detail.startswith("HTTP 4")


def _not_answering(config: Config, service: Service, status: ServiceStatus) -> ServiceError:
    name = _NAMES[service]
    local = endpoints.is_local(config, service)
    if local and not status.url:
        return ServiceError(
            f"the local {name} server is not running", hint="run 'platform-kit services up'"
        )
    if local:
        hint = "run 'platform-kit services up'"
    elif service is Service.DOLT:
        hint = "check dolt.server, DOLT_USER and DOLT_PASSWORD"
    else:
        hint = "check mlflow.tracking_uri or MLFLOW_TRACKING_URI"
    if _refused(status):
        return ServiceError(f"{name} at {status.url} refused the kit ({status.detail})", hint=hint)
    return ServiceError(f"{name} is unreachable at {status.url} ({status.detail})", hint=hint)
