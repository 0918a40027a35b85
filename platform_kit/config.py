"""Load and validate ``platform.yaml`` into typed, immutable objects.

Every problem is reported as ``<file>:<line>: <key.path>: <what is wrong and what to do>``. The
loader keeps YAML node positions so that a mistake deep in the file still names its line.
Secrets never live in this file; they come from the environment (see :mod:`platform_kit.env`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import yaml

from platform_kit.errors import ConfigError
from platform_kit.sql import is_identifier

DEFAULT_CONFIG = "platform.yaml"
COLUMN_TYPES = ("string", "int", "float", "bool", "date", "datetime", "json")
_TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
T = TypeVar("T")


# ---------------------------------------------------------------------------- typed config


@dataclass(frozen=True)
class DoltServer:
    """An external ``dolt sql-server``; the password comes from ``DOLT_PASSWORD``."""

    host: str
    port: int
    user: str


@dataclass(frozen=True)
class DoltRemote:
    """A Dolt remote the kit's database is a clone of: DoltHub, DoltLab or a ``dolt sql-server``
    remotesapi. The user may come from the URL (``http://user@host:port/db``) or DOLT_REMOTE_USER;
    its password only from DOLT_REMOTE_PASSWORD, in the environment of the Dolt server that holds
    the clone (Dolt runs remote calls there)."""

    url: str  # without user or password
    user: str | None = None
    review_url: str | None = None  # where a data PR is opened; {branch} and {main} filled in
    name: str = "origin"

    @property
    def pull_request_url(self) -> str | None:
        """The page where a data branch's pull request is opened, as a template with
        ``{branch}`` and ``{main}``: ``review_url``, else derived for DoltHub and DoltLab."""
        if self.review_url:
            return self.review_url
        url = urlparse(self.url)
        path = url.path.strip("/")
        if url.scheme != "https" or path.count("/") != 1:
            return None  # a sql-server remotesapi (http) has no pull request pages
        host = url.hostname or ""
        if host == "doltremoteapi.dolthub.com":
            host = "www.dolthub.com"
        elif host.startswith("doltremoteapi."):
            host = host.removeprefix("doltremoteapi.")
        return f"https://{host}/repositories/{path}/pulls/new?from={{branch}}&to={{main}}"


@dataclass(frozen=True)
class DoltConfig:
    database: str = "training"
    server: DoltServer | None = None  # None: a local sql-server the kit starts
    main_branch: str = "main"
    remote: DoltRemote | None = None  # None: the database lives only on the server


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str | None = None  # None: a local MLflow server the kit starts
    experiment: str = "platform-kit"


@dataclass(frozen=True)
class FileSource:
    """A CSV or XLSX file exported by an analyst."""

    file: Path
    worksheet: str | None = None

    @property
    def id(self) -> str:
        return str(self.file)


@dataclass(frozen=True)
class GoogleSource:
    """A Google spreadsheet, read through gspread."""

    spreadsheet: str
    worksheet: str | None = None

    @property
    def id(self) -> str:
        return f"{self.spreadsheet}/{self.worksheet}" if self.worksheet else self.spreadsheet


SheetSource = FileSource | GoogleSource


@dataclass(frozen=True)
class SheetConfig:
    name: str
    source: SheetSource
    table: str
    primary_key: tuple[str, ...]
    columns: Mapping[str, str]  # column -> one of COLUMN_TYPES, in sheet order
    renames: Mapping[str, str] = field(default_factory=dict)  # sheet header -> column
    required: tuple[str, ...] = ()
    allow_drops: bool = False


@dataclass(frozen=True)
class CommandTrainer:
    """Any program: ``{data}`` and ``{out}`` in the command are replaced by paths."""

    command: str


Trainer = str | CommandTrainer  # "package.module:function" or a command


@dataclass(frozen=True)
class PromoteIf:
    metric: str
    min: float | None = None
    max: float | None = None

    def passes(self, metrics: Mapping[str, float]) -> bool:
        value = metrics.get(self.metric)
        if value is None:
            return False
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)


@dataclass(frozen=True)
class ModelConfig:
    """One model, or a family of models expanded from ``for_each`` (see :mod:`platform_kit.catalog`)."""

    name: str  # a template such as "intent-{customer_id}" for families
    query: str  # may use %(field)s parameters from the for_each row
    trainer: Trainer
    params: Mapping[str, Any] = field(default_factory=dict)
    family: str | None = None
    for_each: str | None = None
    promote_if: PromoteIf | None = None

    @property
    def template_fields(self) -> tuple[str, ...]:
        return tuple(_TEMPLATE_FIELD.findall(self.name))


@dataclass(frozen=True)
class ReleaseConfig:
    image: str
    base_image: str = "python:3.11-slim"
    alias: str = "production"


@dataclass(frozen=True)
class GitHubConfig:
    repository: str


@dataclass(frozen=True)
class Config:
    path: Path  # the platform.yaml this came from
    project: str
    dolt: DoltConfig
    mlflow: MlflowConfig
    sheets: tuple[SheetConfig, ...]
    models: tuple[ModelConfig, ...]
    release: ReleaseConfig | None
    github: GitHubConfig | None

    @property
    def root(self) -> Path:
        """The project directory; relative paths in the file are relative to it."""
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        """Where local services and the kit keep their state (``.platform/``)."""
        return self.root / ".platform"

    @property
    def model_alias(self) -> str:
        """The model registry alias a release collects (``release.alias``)."""
        return self.release.alias if self.release else "production"

    def require_release(self) -> ReleaseConfig:
        """The 'release' section.

        Raises:
            ConfigError: the file has none.
        """
        if self.release is None:
            raise ConfigError(
                f"{self.path}: no 'release' section", hint="add release: {image: HOST:PORT/NAME}"
            )
        return self.release

    def sheet(self, name: str) -> SheetConfig:
        for sheet in self.sheets:
            if sheet.name == name:
                return sheet
        known = ", ".join(s.name for s in self.sheets) or "none"
        raise ConfigError(f"{self.path}: no sheet named {name!r} (configured: {known})")


# ---------------------------------------------------------------------------- loading


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Read and validate a platform.yaml.

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks the schema; the message names
            the file, the key path and the line.
    """
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file", hint="run 'platform-kit init' or pass --config PATH"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate YAML text as a platform.yaml located at ``path``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{line}: not valid YAML: {problem}") from None
    if node is None:
        raise ConfigError(f"{path}: the file is empty", hint="run 'platform-kit init'")
    return _Reader(path).config(_Node(node, ""))


class _Node:
    """A YAML node with its key path, so every error can name the line."""

    def __init__(self, node: yaml.Node, keypath: str) -> None:
        self.node = node
        self.keypath = keypath or "<top level>"
        self.line = node.start_mark.line + 1

    def is_null(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag.endswith(":null")

    def value(self) -> Any:
        return yaml.safe_load(yaml.serialize(self.node))


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, node: _Node, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{node.line}: {node.keypath}: {message}")

    # -- primitives

    def mapping(
        self, node: _Node, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> dict[str, _Node]:
        if not isinstance(node.node, yaml.MappingNode):
            raise self.error(node, "expected a mapping of keys to values")
        out: dict[str, _Node] = {}
        allowed = required + optional
        for key_node, value_node in node.node.value:
            key = key_node.value
            child_path = f"{node.keypath}.{key}" if node.keypath != "<top level>" else str(key)
            if key not in allowed:
                hint = f"allowed keys: {', '.join(allowed)}"
                raise ConfigError(
                    f"{self.path}:{key_node.start_mark.line + 1}: {child_path}: unknown key ({hint})"
                )
            if key in out:
                raise ConfigError(
                    f"{self.path}:{key_node.start_mark.line + 1}: {child_path}: duplicate key"
                )
            out[key] = _Node(value_node, child_path)
        for key in required:
            if key not in out:
                raise self.error(node, f"missing required key '{key}'")
        return out

    def scalar(self, node: _Node, kind: type[T], what: str) -> T:
        if not isinstance(node.node, yaml.ScalarNode):
            raise self.error(node, f"expected {what}")
        value = node.value()
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(node, f"expected {what}, got {value!r}")
        return value

    def string(self, node: _Node) -> str:
        value = self.scalar(node, str, "a string")
        if not value.strip():
            raise self.error(node, "must not be empty")
        return value

    def optional(self, fields: dict[str, _Node], key: str, read: Callable[[_Node], T]) -> T | None:
        node = fields.get(key)
        return None if node is None or node.is_null() else read(node)

    def identifier(self, node: _Node, value: str | None = None) -> str:
        value = self.string(node) if value is None else value
        if not is_identifier(value):
            raise self.error(
                node,
                f"{value!r} is not a safe SQL identifier (letters, digits, _; not starting "
                "with a digit); map it with 'renames'",
            )
        return value

    def string_list(self, node: _Node) -> tuple[str, ...]:
        if isinstance(node.node, yaml.ScalarNode):
            return (self.string(node),)
        if not isinstance(node.node, yaml.SequenceNode):
            raise self.error(node, "expected a list of strings")
        return tuple(
            self.string(_Node(n, f"{node.keypath}[{i}]")) for i, n in enumerate(node.node.value)
        )

    def items(self, node: _Node) -> list[_Node]:
        if not isinstance(node.node, yaml.SequenceNode):
            raise self.error(node, "expected a list")
        return [_Node(n, f"{node.keypath}[{i}]") for i, n in enumerate(node.node.value)]

    # -- sections

    def config(self, root: _Node) -> Config:
        fields = self.mapping(
            root,
            required=("project",),
            optional=("dolt", "mlflow", "sheets", "models", "release", "github"),
        )
        project = self.string(fields["project"])
        sheets = (
            tuple(self.sheet(n) for n in self.items(fields["sheets"])) if "sheets" in fields else ()
        )
        self.unique(fields.get("sheets"), [s.name for s in sheets], "sheet name")
        models = (
            tuple(self.model(n) for n in self.items(fields["models"])) if "models" in fields else ()
        )
        self.unique(fields.get("models"), [m.name for m in models], "model name")
        return Config(
            path=self.path,
            project=project,
            dolt=self.dolt(fields["dolt"]) if "dolt" in fields else DoltConfig(),
            mlflow=self.mlflow(fields["mlflow"], project)
            if "mlflow" in fields
            else MlflowConfig(experiment=project),
            sheets=sheets,
            models=models,
            release=self.optional(fields, "release", self.release),
            github=self.optional(fields, "github", self.github),
        )

    def unique(self, node: _Node | None, names: list[str], what: str) -> None:
        seen: set[str] = set()
        for name in names:
            if name in seen and node is not None:
                raise self.error(node, f"duplicate {what} {name!r}")
            seen.add(name)

    def dolt(self, node: _Node) -> DoltConfig:
        f = self.mapping(node, (), ("database", "server", "main_branch", "remote"))
        return DoltConfig(
            database=self.optional(f, "database", self.identifier) or "training",
            server=self.optional(f, "server", self.dolt_server),
            main_branch=self.optional(f, "main_branch", self.string) or "main",
            remote=self.optional(f, "remote", self.dolt_remote),
        )

    def dolt_remote(self, node: _Node) -> DoltRemote:
        """``remote: URL`` or ``remote: {url: URL, review_url: TEMPLATE}``."""
        review: str | None = None
        if isinstance(node.node, yaml.MappingNode):
            f = self.mapping(node, ("url",), ("review_url",))
            review = self.optional(f, "review_url", self.string)
            if review is not None and urlparse(review).scheme not in ("http", "https"):
                raise self.error(f["review_url"], "expected an http(s):// URL ({branch}, {main})")
            node = f["url"]
        text = self.string(node)
        url = urlparse(text)
        if url.scheme not in ("http", "https", "file") or not (url.hostname or url.path.strip("/")):
            raise self.error(
                node,
                "expected a Dolt remote URL: https://doltremoteapi.dolthub.com/OWNER/REPO, a "
                "DoltLab URL, or http://[user@]host:port/DATABASE of a sql-server's remotesapi",
            )
        if url.password:
            raise self.error(node, "do not put a password in the file; set DOLT_REMOTE_PASSWORD")
        netloc = url.hostname or ""
        if url.port:
            netloc += f":{url.port}"
        clean = url._replace(netloc=netloc).geturl()
        return DoltRemote(url=clean, user=url.username or None, review_url=review)

    def dolt_server(self, node: _Node) -> DoltServer:
        url = urlparse(self.string(node))
        if url.scheme != "mysql" or not url.hostname:
            raise self.error(node, "expected mysql://user@host:port (password from DOLT_PASSWORD)")
        if url.password:
            raise self.error(node, "do not put a password in the file; set DOLT_PASSWORD")
        return DoltServer(host=url.hostname, port=url.port or 3306, user=url.username or "root")

    def mlflow(self, node: _Node, project: str) -> MlflowConfig:
        f = self.mapping(node, (), ("tracking_uri", "experiment"))
        uri = self.optional(f, "tracking_uri", self.string)
        if uri is not None and urlparse(uri).scheme not in ("http", "https"):
            raise self.error(f["tracking_uri"], "expected an http(s):// URL of an MLflow server")
        return MlflowConfig(
            tracking_uri=uri, experiment=self.optional(f, "experiment", self.string) or project
        )

    def sheet(self, node: _Node) -> SheetConfig:
        f = self.mapping(
            node,
            required=("name", "source", "primary_key", "columns"),
            optional=("table", "renames", "required", "allow_drops"),
        )
        name = self.string(f["name"])
        columns_node = f["columns"]
        columns: dict[str, str] = {}
        for key, value in self.mapping(columns_node, (), tuple(self.keys(columns_node))).items():
            column = self.identifier(value, key)
            kind = self.string(value)
            if kind not in COLUMN_TYPES:
                raise self.error(
                    value, f"unknown column type {kind!r} (one of {', '.join(COLUMN_TYPES)})"
                )
            columns[column] = kind
        if not columns:
            raise self.error(columns_node, "declare at least one column")
        primary_key = self.string_list(f["primary_key"])
        for key in primary_key:
            if key not in columns:
                raise self.error(
                    f["primary_key"], f"primary key column {key!r} is not in 'columns'"
                )
        renames: dict[str, str] = {}
        if "renames" in f:
            for header, target in self.mapping(
                f["renames"], (), tuple(self.keys(f["renames"]))
            ).items():
                renames[header] = self.identifier(target)
                if renames[header] not in columns:
                    raise self.error(
                        target, f"rename target {renames[header]!r} is not in 'columns'"
                    )
        required = self.optional(f, "required", self.string_list) or ()
        for column in required:
            if column not in columns:
                raise self.error(f["required"], f"required column {column!r} is not in 'columns'")
        return SheetConfig(
            name=name,
            source=self.source(f["source"]),
            table=self.optional(f, "table", self.identifier) or self.identifier(f["name"], name),
            primary_key=primary_key,
            columns=columns,
            renames=renames,
            required=tuple(dict.fromkeys(primary_key + tuple(required))),
            allow_drops=bool(
                self.optional(f, "allow_drops", lambda n: self.scalar(n, bool, "true or false"))
            ),
        )

    @staticmethod
    def keys(node: _Node) -> list[str]:
        if not isinstance(node.node, yaml.MappingNode):
            return []
        return [str(k.value) for k, _ in node.node.value]

    def source(self, node: _Node) -> SheetSource:
        if isinstance(node.node, yaml.MappingNode) and "spreadsheet" in self.keys(node):
            f = self.mapping(node, ("spreadsheet",), ("worksheet",))
            return GoogleSource(
                spreadsheet=self.string(f["spreadsheet"]),
                worksheet=self.optional(f, "worksheet", self.string),
            )
        f = self.mapping(node, ("file",), ("worksheet",))
        file = Path(self.string(f["file"]))
        if file.suffix.lower() not in (".csv", ".xlsx"):
            raise self.error(f["file"], "a file source must be a .csv or .xlsx file")
        return FileSource(
            file=file if file.is_absolute() else (self.path.parent / file),
            worksheet=self.optional(f, "worksheet", self.string),
        )

    def model(self, node: _Node) -> ModelConfig:
        f = self.mapping(
            node,
            required=("name", "query", "trainer"),
            optional=("family", "for_each", "params", "promote_if"),
        )
        family = self.optional(f, "family", self.string)
        for_each = self.optional(f, "for_each", self.string)
        name = self.string(f["name"])
        if (family is None) != (for_each is None):
            raise self.error(node, "a model family needs both 'family' and 'for_each'")
        if for_each is None and _TEMPLATE_FIELD.search(name):
            raise self.error(f["name"], "a {field} in the name needs 'family' and 'for_each'")
        if for_each is not None and not _TEMPLATE_FIELD.search(name):
            raise self.error(f["name"], "a family's name needs a {field} from its for_each query")
        params: dict[str, Any] = {}
        if "params" in f and not f["params"].is_null():
            if not isinstance(f["params"].node, yaml.MappingNode):
                raise self.error(f["params"], "expected a mapping of parameter names to values")
            params = f["params"].value()
        return ModelConfig(
            name=name,
            query=self.string(f["query"]),
            trainer=self.trainer(f["trainer"]),
            params=params,
            family=family,
            for_each=for_each,
            promote_if=self.optional(f, "promote_if", self.promote_if),
        )

    def trainer(self, node: _Node) -> Trainer:
        if isinstance(node.node, yaml.MappingNode):
            f = self.mapping(node, ("command",), ())
            return CommandTrainer(command=self.string(f["command"]))
        value = self.string(node)
        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
            raise self.error(node, "expected 'package.module:function' or {command: '...'}")
        return value

    def promote_if(self, node: _Node) -> PromoteIf:
        f = self.mapping(node, ("metric",), ("min", "max"))
        number = lambda n: self.scalar(n, float, "a number")  # noqa: E731
        return PromoteIf(
            metric=self.string(f["metric"]),
            min=self.optional(f, "min", number),
            max=self.optional(f, "max", number),
        )

    def release(self, node: _Node) -> ReleaseConfig:
        f = self.mapping(node, ("image",), ("base_image", "alias"))
        return ReleaseConfig(
            image=self.string(f["image"]),
            base_image=self.optional(f, "base_image", self.string) or "python:3.11-slim",
            alias=self.optional(f, "alias", self.string) or "production",
        )

    def github(self, node: _Node) -> GitHubConfig:
        f = self.mapping(node, ("repository",), ())
        repo = self.string(f["repository"])
        if not re.match(r"^[\w.-]+/[\w.-]+$", repo):
            raise self.error(f["repository"], "expected owner/repo")
        return GitHubConfig(repository=repo)
