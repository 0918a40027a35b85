from __future__ import annotations

from pathlib import Path

import pytest

from platform_kit.config import CommandTrainer, FileSource, GoogleSource, parse_config
from platform_kit.errors import ConfigError

FULL = """\
project: intent-adapters
dolt:
  database: training
  server: null
  main_branch: main
mlflow:
  tracking_uri: null
  experiment: intent-adapters
sheets:
  - name: customers
    source: {file: sheets/customers.csv}
    table: customers
    primary_key: [customer_id]
    columns: {customer_id: string, name: string, active: bool}
  - name: examples
    source: {spreadsheet: KEY, worksheet: Sheet1}
    table: examples
    primary_key: [example_id]
    columns: {example_id: string, customer_id: string, text: string, label: string}
models:
  - family: intent
    for_each: "SELECT customer_id FROM customers WHERE active"
    name: "intent-{customer_id}"
    query: "SELECT text, label FROM examples WHERE customer_id = %(customer_id)s"
    trainer: training.intent:train
    params: {epochs: 5, lr: 0.01}
    promote_if: {metric: accuracy, min: 0.6}
  - name: global
    query: "SELECT text, label FROM examples"
    trainer: {command: "sh train.sh {data} {out}"}
release:
  image: 127.0.0.1:5000/intent-adapters
  base_image: python:3.11-slim
  alias: production
github:
  repository: owner/repo
"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_config(text, Path("/proj/platform.yaml"))


def test_full_schema_loads() -> None:
    config = parse(FULL)
    assert config.project == "intent-adapters"
    assert config.dolt.server is None and config.dolt.main_branch == "main"
    customers, examples = config.sheets
    assert isinstance(customers.source, FileSource)
    assert customers.source.file == Path("/proj/sheets/customers.csv")
    assert isinstance(examples.source, GoogleSource) and examples.source.worksheet == "Sheet1"
    assert customers.primary_key == ("customer_id",)
    assert dict(customers.columns) == {"customer_id": "string", "name": "string", "active": "bool"}
    family, single = config.models
    assert family.template_fields == ("customer_id",)
    assert family.params == {"epochs": 5, "lr": 0.01}
    assert family.promote_if is not None and family.promote_if.passes({"accuracy": 0.7})
    assert single.trainer == CommandTrainer("sh train.sh {data} {out}")
    assert config.release is not None and config.release.alias == "production"
    assert config.github is not None and config.github.repository == "owner/repo"


def test_external_dolt_server_url() -> None:
    config = parse("project: p\ndolt: {server: 'mysql://kit@db.example:3307'}\n")
    assert config.dolt.server is not None
    assert (config.dolt.server.host, config.dolt.server.port, config.dolt.server.user) == (
        "db.example",
        3307,
        "kit",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("project: p\nbogus: 1\n", r"platform.yaml:2: bogus: unknown key"),
        ("dolt: {}\n", r"platform.yaml:1: <top level>: missing required key 'project'"),
        ("project: p\ndolt:\n  database: [1]\n", r":3: dolt.database: expected a string"),
        (
            "project: p\nsheets:\n  - name: s\n    source: {file: a.csv}\n    primary_key: id\n"
            "    columns: {id: strang}\n",
            r":6: sheets\[0\].columns.id: unknown column type 'strang'",
        ),
        (
            "project: p\nsheets:\n  - name: s\n    source: {file: a.csv}\n    primary_key: id\n"
            "    columns: {'bad col': string}\n",
            r"not a safe SQL identifier",
        ),
        (
            "project: p\nmodels:\n  - name: m-{x}\n    query: q\n    trainer: a.b:c\n",
            r":3: models\[0\].name: a \{field\} in the name needs",
        ),
        (
            "project: p\nmodels:\n  - name: m\n    query: q\n    trainer: nope\n",
            r":5: models\[0\].trainer: expected 'package.module:function'",
        ),
        ("project: p\ndolt: {server: 'mysql://u:secret@h:1'}\n", r"set DOLT_PASSWORD"),
        ("project: [unclosed\n", r"platform.yaml:\d+: not valid YAML"),
    ],
)
def test_errors_name_file_keypath_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse(text)


def test_secret_in_server_url_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse("project: p\ndolt: {server: 'mysql://u:hunter22@h:1'}\n")
    assert "hunter22" not in str(info.value)
