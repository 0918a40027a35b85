"""The sync benchmark, small: its workload runs and every correctness check in it holds."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

import platform_kit.store.dolt as dolt_backend
from platform_kit.store import open_store
from tests.conftest import Services

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_sync.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sync", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_small_benchmark(
    tmp_path: Path, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dolt_backend, "BULK_ROWS", 100)  # the LOAD DATA path, with few rows
    bench = load_bench()
    server = f"mysql://root@{services.dolt.host}:{services.dolt.port}"
    config = bench.write_project(tmp_path, f"bench_{uuid.uuid4().hex[:10]}", server)
    figures = bench.measure(tmp_path, config, open_store(config), rows=500, quiet=True)
    assert figures.rows == 500 and figures.first > 0 and figures.dolt_import > 0
