"""The one helper for each small rule: canonical JSON, atomic JSON files, SQL text, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platform_kit import env
from platform_kit.jsonio import canonical_json, write_json_atomic
from platform_kit.release import context
from platform_kit.sql import is_identifier, quote_string


def test_canonical_json_ignores_key_order() -> None:
    assert canonical_json({"b": "2", "a": "1"}) == '{"a":"1","b":"2"}'
    assert canonical_json({"x": {"d": 1, "c": [2, 1]}}) == '{"x":{"c":[2,1],"d":1}}'


def test_atomic_json_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state" / "watch.json"
    write_json_atomic(target, {"b": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["watch.json"]


def test_identifiers_and_string_literals() -> None:
    assert is_identifier("customer_id") and is_identifier("_x1")
    assert not any(is_identifier(n) for n in ("1x", "a-b", "a b", "", "a;DROP"))
    assert quote_string("it's") == "'it\\'s'"
    assert quote_string("a\\'b") == "'a\\\\\\'b'"


def test_the_cache_directory_honours_platform_kit_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORM_KIT_CACHE", str(tmp_path))
    assert env.cache_dir() == tmp_path
    assert context.models_cache() == tmp_path / "models"
    assert context.wheels_cache() == tmp_path / "wheels"
    monkeypatch.delenv("PLATFORM_KIT_CACHE")
    assert env.cache_dir() == Path.home() / ".cache" / "platform-kit"
