"""The metrics-store DDL: what every table must have, and that the sink's columns match it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paystream.runtime.store import DDL_DIR, TABLE_COLUMNS, load_ddl, render_ddl


@pytest.fixture(scope="module")
def statements() -> list[str]:
    return load_ddl("analytics", 14)


def tables(statements: list[str]) -> dict[str, str]:
    found = {}
    for s in statements:
        m = re.match(r"CREATE TABLE IF NOT EXISTS analytics\.(\w+)", s)
        if m:
            found[m.group(1)] = s
    return found


def test_placeholders_are_all_filled(statements: list[str]) -> None:
    text = "\n".join(statements)
    assert "${" not in text
    assert "INTERVAL 14 DAY" in text
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS analytics"


def test_every_statement_is_idempotent(statements: list[str]) -> None:
    for s in statements:
        if s.startswith("ALTER TABLE"):  # a migration: only ever adds a missing column
            assert re.fullmatch(r"ALTER TABLE \S+\s+ADD COLUMN IF NOT EXISTS .+", s, re.DOTALL), s
            continue
        assert s.startswith(
            (
                "CREATE DATABASE IF NOT EXISTS",
                "CREATE TABLE IF NOT EXISTS",
                "CREATE OR REPLACE VIEW",
            )
        ), s[:60]


def test_migrations_add_what_a_fresh_table_has_before_the_views_read_it(
    statements: list[str],
) -> None:
    """A table made by an earlier version gets each later column, as CREATE declares it."""
    migrations = [s for s in statements if s.startswith("ALTER TABLE")]
    assert migrations  # sink_attempts.delivery came after the first release
    first_view = next(i for i, s in enumerate(statements) if "VIEW" in s.split("(")[0])
    for migration in migrations:
        assert statements.index(migration) < first_view
        m = re.match(
            r"ALTER TABLE \w+\.(\w+)\s+ADD COLUMN IF NOT EXISTS (\w+) (.+?) AFTER",
            migration,
            re.DOTALL,
        )
        assert m, migration
        table, column, declaration = m.groups()
        declared = " ".join(declaration.split())
        fresh = [" ".join(ln.split()) for ln in tables(statements)[table].splitlines()]
        assert f"{column} {declared}".rstrip(",") in [ln.rstrip(",") for ln in fresh], migration


@pytest.mark.parametrize("table", sorted(TABLE_COLUMNS))
def test_each_table_is_deduplicating_partitioned_by_day_with_ttl(
    statements: list[str], table: str
) -> None:
    ddl = tables(statements)[table]
    assert "ENGINE = ReplacingMergeTree" in ddl
    assert re.search(r"PARTITION BY toDate\(\w+\)", ddl)
    assert "ORDER BY (" in ddl
    assert re.search(r"TTL toDateTime\(\w+\) \+ INTERVAL 14 DAY", ddl)
    assert "non_replicated_deduplication_window" in ddl


@pytest.mark.parametrize("table", sorted(TABLE_COLUMNS))
def test_sink_columns_match_the_ddl(statements: list[str], table: str) -> None:
    ddl = tables(statements)[table]
    body = ddl[ddl.index("(") + 1 : ddl.index("ENGINE")]
    columns = tuple(
        line.split()[0] for line in body.splitlines() if line.strip() and line.strip() != ")"
    )
    assert columns == TABLE_COLUMNS[table]


def test_customer_ids_are_only_stored_hashed(statements: list[str]) -> None:
    for ddl in tables(statements).values():
        assert "customer_hash" in ddl
        assert not re.search(r"\bcustomer_id\b", ddl)


def test_views_answer_the_analysts_questions(statements: list[str]) -> None:
    views = {
        m.group(1)
        for s in statements
        if (m := re.match(r"CREATE OR REPLACE VIEW analytics\.(\w+)", s))
    }
    assert views == {
        "sync_latency_per_minute",
        "failure_rate_15m",
        "duplicates_per_day",
        "manual_interventions_per_week",
        "open_exceptions",
    }
    for s in statements:
        if s.startswith("CREATE OR REPLACE VIEW"):
            assert "FINAL" in s


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE DATABASE IF NOT EXISTS ${DATABASE};\n", ["CREATE DATABASE IF NOT EXISTS db"]),
        ("-- only a comment;\n", []),
        ("SELECT 1;\nSELECT 2;\n", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';x';\n", ["SELECT ';x'"]),
        ("SELECT ${TTL_DAYS}\n", ["SELECT 7"]),
    ],
)
def test_render_ddl_splits_on_line_final_semicolons(sql: str, expected: list[str]) -> None:
    assert render_ddl(sql, "db", 7) == expected


def test_ddl_files_are_ordered() -> None:
    names = [p.name for p in sorted(DDL_DIR.glob("*.sql"))]
    assert names == ["001_tables.sql", "002_views.sql"]


def test_ddl_ships_as_package_data() -> None:
    """An installed wheel finds the DDL: pyproject's package-data covers every DDL file."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[3]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["paystream"]
    package = root / "paystream"
    assert DDL_DIR.is_relative_to(package)
    files = [p.relative_to(package).as_posix() for p in sorted(DDL_DIR.glob("*.sql"))]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
