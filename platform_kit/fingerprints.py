"""Content hashes that decide whether a model retrains: rows, params, query, trainer code.

Pure functions over values and files; no backend. Every hash is stable across runs and machines,
since versions recorded long ago are compared with hashes computed now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import shlex
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from platform_kit.config import Trainer
from platform_kit.jsonio import canonical_json


def plain(value: Any) -> Any:
    """A JSON value that stands for ``value`` the same way every time it is read."""
    if isinstance(value, Decimal):
        return f"decimal:{value.normalize()}"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return "hex:" + bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    return value


_AS_IS = frozenset({str, int, bool, type(None)})  # types plain() returns unchanged


def value_key(value: Any) -> str:
    """``value`` as a string that matches however the store returned it (for grouping rows)."""
    return str(plain(value))


def fingerprint(rows: Iterable[Mapping[str, Any]]) -> str:
    """A content hash of rows, independent of their order (duplicates count).

    Each row is hashed on its sorted (column, value) pairs, values made plain by :func:`plain`;
    ``repr`` of str/int/float/bool/None is stable across runs and cheaper than JSON.
    """
    sha256 = hashlib.sha256
    orders: dict[tuple[Any, ...], list[tuple[str, Any]]] = {}
    digests = []
    for r in rows:
        # Rows of one query share their columns: sort the column names once per set of them
        # (names are unique, so sorting the pairs is sorting the names).
        columns = tuple(r)
        order = orders.get(columns)
        if order is None:
            names = [str(k) for k in columns]
            unique = len(set(names)) == len(names)  # else the values break ties: sort per row
            order = sorted(zip(names, columns, strict=True), key=lambda p: p[0]) if unique else []
            orders[columns] = order
        if not order and columns:
            digests.append(
                sha256(repr(sorted((str(k), plain(v)) for k, v in r.items())).encode()).digest()
            )
            continue
        pairs = [
            (name, value if type(value) in _AS_IS else plain(value))
            for name, value in ((n, r[k]) for n, k in order)
        ]
        digests.append(sha256(repr(pairs).encode()).digest())
    digests.sort()
    h = hashlib.sha256(f"rows:{len(digests)}\n".encode())
    for digest in digests:
        h.update(digest)
    return h.hexdigest()


def params_hash(params: Mapping[str, Any]) -> str:
    """A stable hash of a model's params (key order does not matter)."""
    return hashlib.sha256(canonical_json(dict(params)).encode()).hexdigest()


def query_hash(query: str, params: Mapping[str, Any]) -> str:
    """What selects a model's rows: the query text and the parameter values it uses."""
    used = {k: plain(v) for k, v in params.items()}
    body = canonical_json({"query": query, "params": used})
    return hashlib.sha256(body.encode()).hexdigest()


def trainer_id(trainer: Trainer) -> str:
    """``package.module:function``, or ``command:<command>`` for a command trainer."""
    return trainer if isinstance(trainer, str) else f"command:{trainer.command}"


def trainer_code_hash(
    trainer: Trainer, root: Path, cache: dict[tuple[str, str], str] | None = None
) -> str:
    """A hash of the trainer's code.

    A Python trainer hashes every ``.py`` file of its top-level package (a trainer imports its
    siblings, e.g. ``training.bow``); a command hashes its text and each file it names that
    exists under ``root``. ``cache`` saves re-reading the files for many models of one run.
    """
    key = (trainer_id(trainer), str(root.resolve()))
    if cache is not None and key in cache:
        return cache[key]
    value = _code_hash(*key)
    if cache is not None:
        cache[key] = value
    return value


def _code_hash(tid: str, root: str) -> str:
    h = hashlib.sha256(tid.encode())
    for path in _code_files(tid, Path(root)):
        h.update(f"\n{path.name}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _code_files(tid: str, root: Path) -> list[Path]:
    if tid.startswith("command:"):
        files = []
        for token in shlex.split(tid.removeprefix("command:")):
            candidate = root / token
            if "{" not in token and candidate.is_file():
                files.append(candidate)
        return files
    module = tid.split(":", 1)[0]
    top = module.split(".", 1)[0]
    local = root / top
    if local.is_dir() or (root / f"{top}.py").is_file():
        base: Path | None = local if local.is_dir() else root / f"{top}.py"
    else:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        base = None
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            origin = Path(spec.origin)
            base = origin.parent if origin.name == "__init__.py" else origin
    if base is None:
        return []
    if base.is_file():
        return [base]
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def artifact_digest(directory: Path) -> str:
    """``sha256:<hex>`` over every file under ``directory``: relative paths and bytes, in path
    order. Two trainings with bit-for-bit equal output have equal digests."""
    h = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            name = path.relative_to(directory).as_posix()
            h.update(f"{len(name)}:{name}:{path.stat().st_size}\n".encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return f"sha256:{h.hexdigest()}"
