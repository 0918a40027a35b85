"""The lockfiles pin every dependency pyproject.toml declares, at versions it allows.

A dependency added to pyproject.toml without `make lock` fails here, with the fix in the message.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$", re.M)


def pins(lock: str) -> dict[str, list[str]]:
    """Each locked package's versions (one per environment marker)."""
    out: dict[str, list[str]] = {}
    for name, version, _marker in PIN.findall((ROOT / lock).read_text()):
        out.setdefault(canonicalize_name(name), []).append(version)
    return out


def declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return found


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ()), ("requirements-test.lock", ("test",))],
)
def test_the_lock_pins_every_declared_dependency(lock: str, extras: tuple[str, ...]) -> None:
    locked = pins(lock)
    for requirement in declared(*extras):
        versions = locked.get(canonicalize_name(requirement.name))
        assert versions, f"{lock} lacks {requirement.name}: run 'make lock' and commit it"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{lock} pins {requirement.name}=={version}, pyproject.toml wants"
                f" {requirement.specifier}: run 'make lock'"
            )
    assert "--hash=sha256:" in (ROOT / lock).read_text()


def test_runtime_and_test_locks_agree_and_uv_is_pinned() -> None:
    runtime, test = pins("requirements.lock"), pins("requirements-test.lock")
    for name, versions in runtime.items():
        assert test.get(name) == versions, f"{name}: {versions} vs {test.get(name)} ('make lock')"
    assert list(pins("requirements-uv.lock")) == ["uv"]
