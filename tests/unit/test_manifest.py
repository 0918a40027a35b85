"""The pure parts of releases: the manifest's canonical bytes and MD5 tag, diffs, image names,
and reading errors out of a push stream."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from platform_kit.errors import ReleaseError
from platform_kit.release.images import stream_error
from platform_kit.release.manifest import (
    canonical_bytes,
    canonical_json,
    changed_models,
    manifest_md5,
)
from platform_kit.release.registry import Registry, split_image

MANIFEST = {"intent-zeta": "12", "intent-acme": "3"}


def test_canonical_bytes_are_sorted_compact_json() -> None:
    assert canonical_bytes(MANIFEST) == b'{"intent-acme":"3","intent-zeta":"12"}'
    assert canonical_json(MANIFEST) == canonical_bytes(MANIFEST).decode()
    assert (
        canonical_bytes(MANIFEST)
        == json.dumps(MANIFEST, sort_keys=True, separators=(",", ":")).encode()
    )


def test_tag_is_the_lowercase_hex_md5_of_the_canonical_bytes() -> None:
    # Fixed values: a change to the rule would silently change every release tag.
    assert manifest_md5(MANIFEST) == "ab9e0a92c30415515d971ef0c1974c14"
    assert manifest_md5({}) == "99914b932bd37a50b983c5e7c90ae93b"
    assert manifest_md5(MANIFEST) == hashlib.md5(canonical_bytes(MANIFEST)).hexdigest()


def test_tag_ignores_insertion_order_and_sees_every_version() -> None:
    reordered = dict(reversed(list(MANIFEST.items())))
    assert manifest_md5(reordered) == manifest_md5(MANIFEST)
    assert manifest_md5({**MANIFEST, "intent-acme": "4"}) != manifest_md5(MANIFEST)
    assert manifest_md5({**MANIFEST, "intent-new": "1"}) != manifest_md5(MANIFEST)


def test_non_ascii_names_are_escaped_like_json_dumps() -> None:
    manifest = {"intent-café": "1"}
    assert canonical_bytes(manifest) == b'{"intent-caf\\u00e9":"1"}'


def test_versions_must_be_strings() -> None:
    with pytest.raises(TypeError, match="version strings"):
        manifest_md5({"intent-acme": 3})  # type: ignore[dict-item]


def test_changed_models_names_changes_additions_and_removals() -> None:
    old = {"a": "1", "b": "2", "c": "3"}
    new = {"a": "1", "b": "5", "d": "1"}
    assert changed_models(old, new) == {"b": ("2", "5"), "c": ("3", None), "d": (None, "1")}
    assert list(changed_models(old, new)) == ["b", "c", "d"]
    assert changed_models(old, dict(old)) == {}


@pytest.mark.parametrize(
    ("image", "host", "repo"),
    [
        ("127.0.0.1:5000/intent-adapters", "127.0.0.1:5000", "intent-adapters"),
        ("registry.example.com/team/intent", "registry.example.com", "team/intent"),
        ("localhost/x", "localhost", "x"),
    ],
)
def test_split_image(image: str, host: str, repo: str) -> None:
    assert split_image(image) == (host, repo)


@pytest.mark.parametrize("image", ["intent-adapters", "team/intent-adapters"])
def test_an_image_without_a_registry_is_refused(image: str) -> None:
    with pytest.raises(ReleaseError, match="must name its registry"):
        split_image(image)


def test_registry_scheme_is_http_only_on_loopback() -> None:
    assert Registry("127.0.0.1:5000/a").base == "http://127.0.0.1:5000/v2/a"
    assert Registry("registry.example.com/t/a").base == "https://registry.example.com/v2/t/a"


def test_stream_error_finds_the_error_a_push_reports_without_raising() -> None:
    ok: list[dict[str, Any]] = [
        {"status": "Preparing", "id": "a5"},
        {"status": "Pushed", "id": "a5"},
        {"aux": {}},
    ]
    assert stream_error(iter(ok)) is None
    failed: list[dict[str, Any]] = [
        {"status": "The push refers to repository [127.0.0.1:5077/ro]"},
        {"errorDetail": {"message": "HTTP 405"}, "error": "HTTP 405"},
    ]
    assert stream_error(iter(failed)) == "HTTP 405"
    assert stream_error(iter([{"errorDetail": {"message": "denied"}}])) == "denied"
