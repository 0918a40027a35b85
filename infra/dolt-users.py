#!/usr/bin/env python3
"""Create least-privilege Dolt users for platform-kit and protect the main branch.

    python infra/dolt-users.py --host H --port P [--database training] [--admin-user root]
                               [--kit-database platform_kit]

Users (passwords from the environment, never from flags, so they stay out of shell history):

- ``kit_sync`` (``DOLT_SYNC_PASSWORD``): may create and write only ``sheets/*`` branches.
- ``kit_merge`` (``DOLT_MERGE_PASSWORD``): may write every branch; the merge path to main.
- ``kit_read`` (``DOLT_READ_PASSWORD``): reads only (training, planning, lineage).

The admin (``DOLT_PASSWORD``) also creates the data database when missing (the kit users may not
``CREATE DATABASE``) and the kit's bookkeeping database ``platform_kit`` with its ``claims`` table
(what has been announced or run once, e.g. one run per new Dolt head), on which all three users
get SELECT and INSERT and may write its branches.

Dolt's ``dolt_branch_control`` decides who may modify a branch; its default row lets everyone
write everything, so it is replaced. ``dolt_branch_namespace_control`` decides who may create a
branch of a given name. Both use LIKE-style patterns and the longest match wins. Idempotent.
"""

from __future__ import annotations

import argparse
import os
import sys

import mysql.connector

USERS = {  # user -> (password variable, privileges on the database)
    "kit_sync": ("DOLT_SYNC_PASSWORD", "SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, EXECUTE"),
    "kit_merge": ("DOLT_MERGE_PASSWORD", "SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, EXECUTE"),
    "kit_read": ("DOLT_READ_PASSWORD", "SELECT"),
}


KIT_DATABASE = "platform_kit"
# The shape Store.claim() expects (shared with platform_kit/store): the key is claimed once.
CLAIMS_TABLE = (
    "CREATE TABLE IF NOT EXISTS `{db}`.`claims` "
    "(`key` VARCHAR(255) PRIMARY KEY, `claimed_at` DATETIME(6) NOT NULL)"
)
KIT_PRIVILEGES = "SELECT, INSERT"


def statements(
    database: str, admin_user: str, admin_host: str, kit_database: str = KIT_DATABASE
) -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = [
        (f"CREATE DATABASE IF NOT EXISTS `{database}`", ()),
        (f"CREATE DATABASE IF NOT EXISTS `{kit_database}`", ()),
        (CLAIMS_TABLE.format(db=kit_database), ()),
        # The branch-control tables are server-wide, reached from inside any database.
        (f"USE `{database}`", ()),
    ]
    for user, (variable, privileges) in USERS.items():
        password = os.environ.get(variable)
        if not password:
            raise SystemExit(f"dolt-users: set {variable} (the password for {user})")
        out += [
            ("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, "%", password)),
            ("ALTER USER %s@%s IDENTIFIED BY %s", (user, "%", password)),
            (f"GRANT {privileges} ON `{database}`.* TO %s@%s", (user, "%")),
            (f"GRANT {KIT_PRIVILEGES} ON `{kit_database}`.* TO %s@%s", (user, "%")),
        ]
    # Patterns travel as parameters: '%' inside SQL text would need driver-specific escaping.
    any_ = "%"
    out += [
        (
            "DELETE FROM dolt_branch_control WHERE `database` IN (%s, %s, %s)",
            (any_, database, kit_database),
        ),
        (
            "DELETE FROM dolt_branch_namespace_control WHERE `database` IN (%s, %s)",
            (any_, database),
        ),
    ]
    control = [
        (database, any_, admin_user, admin_host, "admin"),
        (database, any_, "kit_merge", any_, "write"),
        (database, "sheets/%", "kit_sync", any_, "write"),
        (kit_database, any_, admin_user, admin_host, "admin"),
        *((kit_database, any_, user, any_, "write") for user in USERS),
    ]
    namespace = [
        (database, "sheets/%", "kit_sync", any_),
        (database, any_, "kit_merge", any_),
        (database, any_, admin_user, admin_host),
    ]
    out += [("INSERT INTO dolt_branch_control VALUES (%s, %s, %s, %s, %s)", row) for row in control]
    out += [
        ("INSERT INTO dolt_branch_namespace_control VALUES (%s, %s, %s, %s)", row)
        for row in namespace
    ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--database", default="training")
    parser.add_argument(
        "--admin-user", default="root", help="an existing superuser (DOLT_PASSWORD)"
    )
    parser.add_argument("--admin-host", default="localhost")
    parser.add_argument("--kit-database", default=KIT_DATABASE)
    args = parser.parse_args()
    todo = statements(args.database, args.admin_user, args.admin_host, args.kit_database)
    # No database on connect: the data database may not exist yet.
    conn = mysql.connector.connect(
        host=args.host,
        port=args.port,
        user=args.admin_user,
        password=os.environ.get("DOLT_PASSWORD", ""),
        autocommit=True,
    )
    try:
        cursor = conn.cursor()
        for sql, params in todo:
            cursor.execute(sql, params or None)
    finally:
        conn.close()
    print(
        f"dolt-users: kit_sync, kit_merge, kit_read set up on {args.database} "
        f"and {args.kit_database}; main is protected"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
