"""Image layers made on the host, the way jib, ko and crane make them: no engine, no rootfs copy.

A layer is a deterministic tar (entries sorted by name, mtime 0, uid/gid 0, fixed modes, GNU
long names) gzipped deterministically (mtime 0, no file name, level 1), so the same files always
give the same ``diff_id`` (sha256 of the tar) and ``digest`` (sha256 of the gzip): a blob the
registry already holds is never uploaded again.

Models are spread over :data:`BUCKETS` layers by a stable hash of their name, so a model always
lands in the same layer and one changed model rewrites one layer of about ``1/BUCKETS`` of the
models. Built layers are kept in a host cache keyed by their content (:class:`LayerCache`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

BUCKETS = 32
LAYOUT = "1"  # the tar layout's version: changing it must change every layer's cache key
GZIP_LEVEL = 1  # fast; model weights barely compress at any level
DIR_MODE, FILE_MODE = 0o755, 0o644


@dataclass(frozen=True)
class Layer:
    """One gzipped tar on the host and its identities."""

    path: Path
    digest: str  # sha256 of the gzip: the blob's name in the registry
    diff_id: str  # sha256 of the tar: the image config's rootfs entry
    size: int  # bytes of the gzip
    tar_size: int  # bytes of the tar (what the layer takes, unpacked)
    created_by: str = ""

    def descriptor(self, media_type: str) -> dict[str, Any]:
        return {"mediaType": media_type, "size": self.size, "digest": self.digest}


def bucket_of(name: str, buckets: int = BUCKETS) -> int:
    """The layer a model lands in: a stable hash of its name, never of the release."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % buckets


def buckets_of(names: Iterable[str], buckets: int = BUCKETS) -> dict[int, list[str]]:
    """bucket -> its models' names sorted; empty buckets are left out."""
    out: dict[int, list[str]] = {}
    for name in sorted(names):
        out.setdefault(bucket_of(name, buckets), []).append(name)
    return dict(sorted(out.items()))


class _Digesting:
    """A write-only stream that hashes and counts what passes through it to ``sink``."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.sink.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _add_tree(tar: tarfile.TarFile, name: str, directory: Path) -> None:
    """``directory`` as ``name``/: directories and regular files, sorted, depth first."""
    tar.addfile(_info(name, tarfile.DIRTYPE, DIR_MODE))
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        inner = f"{name}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            _add_tree(tar, inner, Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            size = entry.stat(follow_symlinks=False).st_size
            with open(entry.path, "rb") as source:
                tar.addfile(_info(inner, tarfile.REGTYPE, FILE_MODE, size), source)


def write_layer(
    target: Path,
    *,
    trees: Mapping[str, Path] | None = None,
    files: Mapping[str, bytes] | None = None,
    created_by: str = "",
) -> Layer:
    """Write a layer to ``target``: each of ``trees`` (path in the image -> a host directory)
    and ``files`` (path in the image -> content), with their parent directories, sorted."""
    trees, files = dict(trees or {}), dict(files or {})
    parents = sorted(
        {"/".join(p.split("/")[:i]) for p in [*trees, *files] for i in range(1, p.count("/") + 1)}
    )
    with open(target, "wb") as out:
        compressed = _Digesting(out)
        with gzip.GzipFile(
            filename="",
            mode="wb",
            fileobj=cast(BinaryIO, compressed),
            compresslevel=GZIP_LEVEL,
            mtime=0,
        ) as gz:
            plain = _Digesting(gz)
            with tarfile.open(
                fileobj=cast(BinaryIO, plain), mode="w", format=tarfile.GNU_FORMAT
            ) as tar:
                for parent in parents:
                    tar.addfile(_info(parent, tarfile.DIRTYPE, DIR_MODE))
                for name in sorted([*trees, *files]):
                    if name in trees:
                        _add_tree(tar, name, trees[name])
                    else:
                        data = files[name]
                        info = _info(name, tarfile.REGTYPE, FILE_MODE, len(data))
                        tar.addfile(info, io.BytesIO(data))
    return Layer(target, compressed.digest, plain.digest, compressed.size, plain.size, created_by)


class LayerCache:
    """Built layers on the host, keyed by what went into them: ``<key>.tar.gz`` beside
    ``<key>.json`` (its digests). Entries are immutable; unused ones are pruned after
    ``days``."""

    def __init__(self, root: Path, days: int = 30) -> None:
        self.root = root
        self.days = days

    def get(self, key: str, created_by: str = "") -> Layer | None:
        meta, blob = self.root / f"{key}.json", self.root / f"{key}.tar.gz"
        try:
            data = json.loads(meta.read_text())
            if not blob.is_file():
                return None
            os.utime(meta)  # recently used: keep it
            os.utime(blob)
        except (OSError, ValueError):
            return None
        return Layer(
            blob, data["digest"], data["diff_id"], data["size"], data["tar_size"], created_by
        )

    def build(
        self,
        key: str,
        *,
        trees: Mapping[str, Path] | None = None,
        files: Mapping[str, bytes] | None = None,
        created_by: str = "",
    ) -> Layer:
        """Write the layer and file it under ``key`` (atomically: a concurrent build sees all
        of it or none)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=".layer-", dir=self.root)
        os.close(fd)
        try:
            layer = write_layer(Path(partial), trees=trees, files=files, created_by=created_by)
            blob = self.root / f"{key}.tar.gz"
            os.replace(partial, blob)
        finally:
            Path(partial).unlink(missing_ok=True)
        meta = {
            "digest": layer.digest,
            "diff_id": layer.diff_id,
            "size": layer.size,
            "tar_size": layer.tar_size,
        }
        fd, partial = tempfile.mkstemp(prefix=".meta-", dir=self.root)
        with os.fdopen(fd, "w") as out:
            json.dump(meta, out)
        os.replace(partial, self.root / f"{key}.json")
        return Layer(blob, layer.digest, layer.diff_id, layer.size, layer.tar_size, created_by)

    def prune(self) -> None:
        horizon = time.time() - self.days * 86400
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            try:
                if entry.stat().st_mtime < horizon:
                    entry.unlink()
            except FileNotFoundError:
                continue  # another build pruned it


def layer_key(parts: Iterable[str]) -> str:
    """The cache key of a layer made from ``parts`` (each model's name and cache key)."""
    digest = hashlib.sha256(f"layout {LAYOUT}\n".encode())
    for part in parts:
        digest.update(part.encode() + b"\n")
    return digest.hexdigest()[:40]


def write_docker_archive(
    target: Path,
    reference: str,
    config: bytes,
    layers: Sequence[tuple[str, Path | None]],
) -> None:
    """A ``docker load`` archive of an image: its config and ``(diff_id, gzipped tar)`` layers.

    A layer given without a file must be one the engine already holds (the runtime's): the
    engine skips a layer it has without opening its file.
    """
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"{diff_id.split(':', 1)[-1]}/layer.tar" for diff_id, _ in layers]
    manifest = [{"Config": config_name, "RepoTags": [reference], "Layers": names}]
    with tarfile.open(target, "w") as tar:

        def add(name: str, data: bytes) -> None:
            tar.addfile(_info(name, tarfile.REGTYPE, FILE_MODE, len(data)), io.BytesIO(data))

        add(config_name, config)
        for name, (_, path) in zip(names, layers, strict=True):
            if path is not None:
                info = _info(name, tarfile.REGTYPE, FILE_MODE, path.stat().st_size)
                with open(path, "rb") as source:
                    tar.addfile(info, source)
        add("manifest.json", json.dumps(manifest).encode())
