"""The environment recorded on every run, and the artifact digest that reproduce compares."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from platform_kit import environment
from platform_kit.errors import UsageError
from platform_kit.fingerprints import artifact_digest
from platform_kit.reproduce import parse_ref
from platform_kit.servable import BowModel


def test_the_lock_hash_comes_from_the_install_record_or_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLATFORM_KIT_LOCK_HASH", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert environment.lock_hash() == "unlocked"
    (tmp_path / "platform-kit-lock.txt").write_text("sha256:abc requirements.lock\n")
    assert environment.lock_hash() == "sha256:abc"
    monkeypatch.setenv("PLATFORM_KIT_LOCK_HASH", "sha256:other")
    assert environment.describe()["env.lock"] == "sha256:other"


def test_describe_names_python_torch_os_and_the_device_once_torch_runs() -> None:
    import torch  # as a Python trainer would

    described = environment.describe()
    assert described["env.python"].count(".") == 2
    assert described["env.torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert described["env.os"].startswith(("Linux ", "Darwin "))
    if torch.cuda.is_available():
        assert described["env.device"].startswith("cuda: ") and "env.cuda" in described
    else:
        assert described["env.device"] == "cpu" and "env.cuda" not in described


def test_equal_weights_are_equal_bytes(tmp_path: Path) -> None:
    def save(where: Path) -> str:
        BowModel(
            labels=["a", "b"],
            buckets=8,
            dim=2,
            ngrams=1,
            embedding=np.ones((8, 2), np.float32),
            weight=np.zeros((2, 2), np.float32),
            bias=np.zeros(2, np.float32),
        ).save(where / "model")
        return artifact_digest(where)

    first = save(tmp_path / "one")
    assert first == save(tmp_path / "two") and first.startswith("sha256:")
    assert BowModel.load(tmp_path / "one" / "model").embedding.shape == (8, 2)
    (tmp_path / "two" / "model" / "extra").write_text("x")
    assert save(tmp_path / "two") != first


@pytest.mark.parametrize("ref", ["name", "name@", "@3", "name@v3"])
def test_reproduce_takes_name_at_version(ref: str) -> None:
    with pytest.raises(UsageError, match="NAME@VERSION"):
        parse_ref(ref)
    assert parse_ref("intent-a@b@12") == ("intent-a@b", 12)
