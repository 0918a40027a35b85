"""JSON the kit writes: canonical text (for hashes and labels) and atomic files (for state)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: the same text for the same value, whatever the key order.

    The release manifest's canonical bytes (and so its MD5 tag) are this text, UTF-8 encoded.
    Values JSON cannot hold are written as ``str(value)``.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON: readers see the old file or the new one, never a
    torn write, and the new one survives a crash of the machine (file and rename are fsynced).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
