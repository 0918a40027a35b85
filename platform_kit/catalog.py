"""The concrete models of a project: platform.yaml's ``models:`` entries, families expanded.

A ``models:`` entry is one model, or a family expanded by running its ``for_each`` query over
Dolt at a commit: one model per row, named by filling the name template from the row, whose
training query takes the row as parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from platform_kit.config import Config, ModelConfig
from platform_kit.errors import ConfigError, RefNotFoundError, StoreError, UsageError
from platform_kit.fingerprints import query_hash, trainer_id
from platform_kit.store.base import Row, Store

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
QUERY_PARAM = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")


@dataclass(frozen=True)
class Model:
    """One concrete model: a single ``models:`` entry, or one row of a family."""

    name: str
    config: ModelConfig
    query_params: Mapping[str, Any] = field(default_factory=dict)  # the for_each row

    @property
    def trainer_id(self) -> str:
        return trainer_id(self.config.trainer)

    @property
    def params(self) -> Mapping[str, Any]:
        return self.config.params

    @property
    def used_params(self) -> tuple[str, ...]:
        """The for_each fields the query reads (``%(field)s``)."""
        return tuple(dict.fromkeys(QUERY_PARAM.findall(self.config.query)))

    def query_hash(self) -> str:
        """What selects the rows: the query text and the parameter values it uses."""
        used = {k: self.query_params[k] for k in self.used_params if k in self.query_params}
        return query_hash(self.config.query, used)


def expand_models(config: Config, store: Store, commit: str) -> list[Model]:
    """Every concrete model at ``commit``, in config order (families expand per row).

    Raises:
        ConfigError: a family's query fails, or its rows lack a name field or give a bad or
            duplicate model name.
    """
    out: list[Model] = []
    seen: dict[str, str] = {}
    for entry in config.models:
        if entry.for_each is None:
            models = [Model(entry.name, entry)]
        else:
            try:
                rows = store.query(entry.for_each, None, commit)
            except RefNotFoundError:
                raise
            except StoreError as exc:
                raise ConfigError(
                    f"{config.path}: model family {entry.family!r}: its for_each query failed at "
                    f"Dolt commit {commit[:12]}: {exc.message}",
                    hint="fix 'for_each' in platform.yaml; nothing was trained",
                ) from exc
            models = [_family_member(config, entry, row) for row in rows]
        for model in models:
            if not _MODEL_NAME.match(model.name):
                raise ConfigError(
                    f"{config.path}: model name {model.name!r} (from {entry.name!r}) is not valid: "
                    "use letters, digits, '_', '.', '-'"
                )
            if model.name in seen:
                raise ConfigError(
                    f"{config.path}: two models are named {model.name!r} "
                    f"(from {seen[model.name]!r} and {entry.name!r}); make the names unique"
                )
            seen[model.name] = entry.name
            out.append(model)
    return out


def _family_member(config: Config, entry: ModelConfig, row: Row) -> Model:
    missing = [f for f in entry.template_fields if f not in row]
    if missing:
        raise ConfigError(
            f"{config.path}: model family {entry.family!r}: its for_each query returns no "
            f"column {', '.join(missing)} for the name {entry.name!r} (columns: {', '.join(row)})"
        )
    name = entry.name.format(**{k: _name_part(v) for k, v in row.items()})
    return Model(name, entry, dict(row))


def _name_part(value: Any) -> str:
    return "" if value is None else str(value)


def select_models(models: Sequence[Model], names: Sequence[str]) -> list[Model]:
    """The models named, in the order given.

    Raises:
        UsageError: a name matches no model.
    """
    by_name = {m.name: m for m in models}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        sample = ", ".join(sorted(by_name)[:5]) + (" ..." if len(by_name) > 5 else "")
        raise UsageError(
            f"no model named {', '.join(repr(n) for n in unknown)} at this commit "
            f"(models: {sample or 'none'})",
            hint="see 'platform-kit plan'",
        )
    return [by_name[n] for n in dict.fromkeys(names)]
