"""The release manifest and its tag: pure functions, the contract other tools read.

The manifest maps model name -> version number as a string. Its canonical bytes are
``json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()`` and the release tag is
the lowercase hex MD5 of those bytes (docs/architecture.md). Anyone can recompute a tag from the
registry's aliases with nothing but the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from platform_kit import jsonio


def canonical_json(manifest: Mapping[str, str]) -> str:
    """The canonical text of a manifest (sorted keys, no spaces); also the image label."""
    for name, version in manifest.items():
        if not isinstance(name, str) or not isinstance(version, str):
            raise TypeError(
                f"a manifest maps model names to version strings, got {name!r}: {version!r}"
            )
    return jsonio.canonical_json(dict(manifest))


def canonical_bytes(manifest: Mapping[str, str]) -> bytes:
    return canonical_json(manifest).encode()


def manifest_md5(manifest: Mapping[str, str]) -> str:
    """The release tag of a manifest: lowercase hex MD5 of its canonical bytes."""
    return hashlib.md5(canonical_bytes(manifest)).hexdigest()


def changed_models(
    old: Mapping[str, str], new: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Models whose version differs, appears or disappears, sorted: name -> (old, new)."""
    names = sorted(set(old) | set(new))
    return {n: (old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)}
