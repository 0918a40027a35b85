"""Release layers are deterministic tars, bucketed by model name and cached by content."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from platform_kit.release.layers import (
    BUCKETS,
    LayerCache,
    bucket_of,
    buckets_of,
    layer_key,
    write_docker_archive,
    write_layer,
)


def model(root: Path, name: str, weights: bytes) -> Path:
    directory = root / name
    (directory / "sub").mkdir(parents=True)
    (directory / "model.json").write_text(json.dumps({"name": name}))
    (directory / "weights.npz").write_bytes(weights)
    (directory / "sub" / "extra.txt").write_text("x")
    return directory


def test_the_same_files_give_the_same_digests_whatever_their_times_and_modes(
    tmp_path: Path,
) -> None:
    one = model(tmp_path / "one", "m", b"w" * 5000)
    two = model(tmp_path / "two", "m", b"w" * 5000)
    os.utime(two / "model.json", (1, 1))
    (two / "weights.npz").chmod(0o600)
    first = write_layer(tmp_path / "1.tar.gz", trees={"models/m": one}, created_by="c")
    second = write_layer(tmp_path / "2.tar.gz", trees={"models/m": two})
    assert (first.digest, first.diff_id) == (second.digest, second.diff_id)
    blob = first.path.read_bytes()
    assert first.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert first.size == len(blob)
    plain = gzip.decompress(blob)
    assert first.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert first.tar_size == len(plain)
    assert blob[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "models",
        "models/m",
        "models/m/model.json",
        "models/m/sub",
        "models/m/sub/extra.txt",
        "models/m/weights.npz",
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.mode for m in members if m.isdir()} == {0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    changed = model(tmp_path / "three", "m", b"v" * 5000)
    third = write_layer(tmp_path / "3.tar.gz", trees={"models/m": changed})
    assert third.digest != first.digest and third.diff_id != first.diff_id


def test_files_and_long_names(tmp_path: Path) -> None:
    long = "intent-" + "x" * 150
    directory = model(tmp_path, long, b"w")
    layer = write_layer(
        tmp_path / "l.tar.gz",
        trees={f"models/{long}": directory},
        files={"models/manifest.json": b"{}\n"},
    )
    with tarfile.open(layer.path) as tar:
        names = tar.getnames()
        assert tar.extractfile("models/manifest.json").read() == b"{}\n"  # type: ignore[union-attr]
    assert names[:2] == ["models", f"models/{long}"]
    assert f"models/{long}/weights.npz" in names


def test_a_model_always_lands_in_the_same_bucket() -> None:
    names = [f"intent-customer-{i}" for i in range(1000)]
    first = buckets_of(names)
    assert buckets_of(reversed(names)) == first  # order does not matter
    assert all(0 <= b < BUCKETS for b in first) and len(first) == BUCKETS
    assert sum(len(v) for v in first.values()) == 1000
    assert max(len(v) for v in first.values()) < 60  # spread evenly enough
    # Adding or removing other models never moves a model to another bucket.
    fewer = buckets_of(names[:10])
    assert all(n in first[b] for b, members in fewer.items() for n in members)
    assert len(fewer) <= 10  # empty buckets are left out
    assert bucket_of("intent-customer-7") == bucket_of("intent-customer-7")
    assert all(v == sorted(v) for v in first.values())


def test_the_layer_cache_keeps_a_layer_by_its_content_key(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache", days=30)
    key = layer_key(["m\0key-1"])
    assert layer_key(["m\0key-1"]) == key != layer_key(["m\0key-2"])
    assert cache.get(key) is None
    directory = model(tmp_path, "m", b"w" * 100)
    built = cache.build(key, trees={"models/m": directory}, created_by="step")
    found = cache.get(key, "step")
    assert found == built
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        f"{key}.json",
        f"{key}.tar.gz",
    ]
    for entry in (tmp_path / "cache").iterdir():
        os.utime(entry, (1, 1))  # unused for decades
    cache.prune()
    assert cache.get(key) is None and not list((tmp_path / "cache").iterdir())


def test_a_docker_archive_names_each_layer_by_its_diff_id(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "l.tar.gz", files={"models/manifest.json": b"{}"})
    config = b'{"rootfs": {}}'
    archive = tmp_path / "image.tar"
    write_docker_archive(
        archive, "repo:tag", config, [("sha256:" + "a" * 64, None), (layer.diff_id, layer.path)]
    )
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        names = tar.getnames()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    assert manifest == [
        {
            "Config": config_name,
            "RepoTags": ["repo:tag"],
            "Layers": ["a" * 64 + "/layer.tar", layer.diff_id[7:] + "/layer.tar"],
        }
    ]
    # The runtime's layers (the engine has them) are named but not carried.
    assert names == [config_name, layer.diff_id[7:] + "/layer.tar", "manifest.json"]
