"""The release manifest and its tag: pure functions, the contract other tools read.

The manifest maps model name -> version number as a string. Its canonical bytes are
``json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()`` and the release tag is
the lowercase hex MD5 of those bytes (ARCHITECTURE.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping


def canonical_bytes(manifest: Mapping[str, str]) -> bytes:
    return json.dumps(dict(manifest), sort_keys=True, separators=(",", ":")).encode()


def manifest_md5(manifest: Mapping[str, str]) -> str:
    """The release tag of a manifest."""
    return hashlib.md5(canonical_bytes(manifest)).hexdigest()


def changed_models(
    old: Mapping[str, str], new: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Models whose version differs (or that appear or disappear): name -> (old, new)."""
    names = sorted(set(old) | set(new))
    return {n: (old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)}
