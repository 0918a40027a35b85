"""The kit's two rules for SQL text: which names are safe identifiers, and string literals."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_identifier(name: str) -> bool:
    """Letters, digits and ``_``, not starting with a digit: safe unquoted in Dolt and MySQL
    (table and column names, query parameters)."""
    return bool(_IDENTIFIER.match(name))


def quote_string(text: str) -> str:
    """``text`` as a single-quoted literal, backslashes and quotes escaped the MySQL way.

    Also used in MLflow's search filters, whose grammar is SQL's. Use it only where a bound
    parameter cannot be (file names in LOAD DATA, filter strings).
    """
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
