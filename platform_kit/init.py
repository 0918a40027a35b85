"""Scaffold a new project: a commented platform.yaml and small sample sheets.

The templates ship as package data under ``platform_kit/assets/init/``; the sample sheets are
written by ``examples/generate.py``. ``${project}`` in the config template becomes the project's
name, derived from the directory's name.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from platform_kit.config import DEFAULT_CONFIG, parse_config
from platform_kit.errors import UsageError

TEMPLATE_FILES = (DEFAULT_CONFIG, "sheets/customers.csv", "sheets/examples.csv")
DEFAULT_PROJECT = "my-project"


def project_name(directory: Path) -> str:
    """A name usable as an MLflow experiment and in an image repository: lowercase, ``a-z0-9-``."""
    slug = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    return slug or DEFAULT_PROJECT


def _template(relative: str) -> Traversable:
    return resources.files("platform_kit").joinpath("assets", "init", *relative.split("/"))


def render(relative: str, project: str) -> bytes:
    """The bytes ``init`` writes for one template file."""
    data = _template(relative).read_bytes()
    if relative == DEFAULT_CONFIG:
        data = Template(data.decode("utf-8")).substitute(project=project).encode("utf-8")
    return data


def init_project(directory: str | Path, force: bool = False) -> list[Path]:
    """Write a sample project into ``directory`` (created if missing).

    Args:
        directory: the project directory.
        force: overwrite files that already exist.

    Returns:
        The files written, config first.

    Raises:
        UsageError: a file exists and ``force`` is false (nothing is written then), or the
            directory cannot be written.
    """
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a directory", hint="pick another DIR")
    targets = [root / relative for relative in TEMPLATE_FILES]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        names = ", ".join(str(t) for t in existing)
        raise UsageError(
            f"{names}: already exists", hint="pass --force to overwrite, or pick another DIR"
        )
    project = project_name(root)
    contents = {
        target: render(rel, project) for target, rel in zip(targets, TEMPLATE_FILES, strict=True)
    }
    # A template that does not parse is a packaging bug; catch it before writing anything.
    parse_config(contents[targets[0]].decode("utf-8"), (root / DEFAULT_CONFIG).resolve())
    try:
        for target, data in contents.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{root}: cannot write the project: {exc.strerror or exc}") from exc
    return targets
