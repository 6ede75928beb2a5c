"""Suite builders: what each suite contains, built from the real ingest contract.

These tests inspect the suites without validating data (see test_gx_runner.py).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) from anywhere
    sys.path.insert(0, str(ROOT))

from expectations.suites import (  # noqa: E402
    CHURN_PERIOD_COLUMNS,
    CHURN_PERIOD_COUNT_COLUMNS,
    churn_period_suite,
    raw_table_suite,
)
from orchestration.ingest.contract import TABLES  # noqa: E402


def _kinds(suite) -> list[tuple]:
    """(type, column-ish kwargs) for every expectation, in suite order."""
    out = []
    for e in suite.expectations:
        cfg = e.configuration
        kw = cfg.kwargs
        out.append((cfg.type, kw.get("column") or (kw.get("column_A"), kw.get("column_B"))))
    return out


def _find(suite, type_: str, column=None) -> list:
    hits = []
    for e in suite.expectations:
        cfg = e.configuration
        if cfg.type != type_:
            continue
        if column is not None and cfg.kwargs.get("column") != column:
            continue
        hits.append(cfg.kwargs)
    return hits


def test_expectations_package_never_imports_orchestration_or_dagster():
    forbidden = ("orchestration", "dagster", "dagster_ge", "dagster_dbt")
    pkg = ROOT / "expectations"
    files = sorted(pkg.rglob("*.py"))
    assert files, "expectations package not found"
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_raw_suite_name_and_core_checks(name):
    table = TABLES[name]
    suite = raw_table_suite(table)
    assert suite.name == f"raw_{name}"
    kinds = _kinds(suite)

    # every required column must exist
    for col in table.required_columns:
        assert ("expect_column_to_exist", col) in kinds
    # optional columns are not required to exist
    optional = [c.name for c in table.columns if not c.required]
    for col in optional:
        assert ("expect_column_to_exist", col) not in kinds
    # primary key: not null + unique (exactly once each)
    assert kinds.count(("expect_column_values_to_not_be_null", table.primary_key)) == 1
    assert kinds.count(("expect_column_values_to_be_unique", table.primary_key)) == 1
    # customer_id not null on child tables; customers' key is customer_id itself
    assert kinds.count(("expect_column_values_to_not_be_null", "customer_id")) == 1
    # no uniqueness on anything but the key
    assert [k for k in kinds if k[0] == "expect_column_values_to_be_unique"] == [
        ("expect_column_values_to_be_unique", table.primary_key)
    ]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_raw_suite_ranges_and_enumerations_follow_the_contract(name):
    table = TABLES[name]
    suite = raw_table_suite(table)
    for col in table.columns:
        between = _find(suite, "expect_column_values_to_be_between", col.name)
        if col.min_value is None and col.max_value is None:
            assert between == []
        else:
            assert len(between) == 1
            assert between[0].get("min_value") == col.min_value
            assert between[0].get("max_value") == col.max_value
        in_set = _find(suite, "expect_column_values_to_be_in_set", col.name)
        if col.allowed:
            assert len(in_set) == 1 and sorted(in_set[0]["value_set"]) == sorted(col.allowed)
            # nulls in optional enumerations are allowed: no mostly<1 trick, no not-null
            assert in_set[0].get("mostly", 1) == 1
            assert _find(suite, "expect_column_values_to_not_be_null", col.name) == []
        else:
            assert in_set == []


def test_date_order_pairs():
    pairs = {}
    for name, table in TABLES.items():
        found = _find(raw_table_suite(table), "expect_column_pair_values_a_to_be_greater_than_b")
        if found:
            pairs[name] = [
                (k["column_A"], k["column_B"], bool(k.get("or_equal")), k["ignore_row_if"])
                for k in found
            ]
    assert pairs == {
        "subscriptions": [("end_date", "start_date", False, "either_value_is_missing")],
        "support_tickets": [("resolved_at", "opened_at", True, "either_value_is_missing")],
    }


def test_columns_argument_drops_checks_on_absent_optional_columns_only():
    tickets = TABLES["support_tickets"]
    present = ["ticket_id", "customer_id", "opened_at", "priority"]  # no resolved_at, no score
    suite = raw_table_suite(tickets, columns=present)
    assert _find(suite, "expect_column_values_to_be_between", "satisfaction_score") == []
    assert _find(suite, "expect_column_pair_values_a_to_be_greater_than_b") == []
    # required columns keep their checks even when absent
    orders = TABLES["orders"]
    suite = raw_table_suite(orders, columns=["order_id", "customer_id"])
    assert ("expect_column_to_exist", "amount") in _kinds(suite)
    assert len(_find(suite, "expect_column_values_to_be_between", "amount")) == 1
    assert _find(suite, "expect_column_values_to_be_in_set", "status") == []


def test_duck_typed_table_works_without_the_contract_module():
    col = SimpleNamespace
    table = SimpleNamespace(
        name="widgets",
        primary_key="widget_id",
        references_customer=False,
        date_columns=(),
        columns=(
            col(name="widget_id", sql_type="VARCHAR", required=True, allowed=(),
                min_value=None, max_value=None),
            col(name="size", sql_type="DOUBLE", required=False, allowed=(),
                min_value=0, max_value=None),
            col(name="colour", sql_type="VARCHAR", required=False, allowed=("red", "blue"),
                min_value=None, max_value=None),
        ),
    )
    suite = raw_table_suite(table)
    assert suite.name == "raw_widgets"
    assert _kinds(suite) == [
        ("expect_column_to_exist", "widget_id"),
        ("expect_column_values_to_not_be_null", "widget_id"),
        ("expect_column_values_to_be_unique", "widget_id"),
        ("expect_column_values_to_be_between", "size"),
        ("expect_column_values_to_be_in_set", "colour"),
    ]


def test_churn_period_suite_contents():
    suite = churn_period_suite()
    assert suite.name == "fct_churn_period"
    kinds = _kinds(suite)
    for col in CHURN_PERIOD_COLUMNS:
        assert ("expect_column_to_exist", col) in kinds
    assert ("expect_column_values_to_not_be_null", "period_start") in kinds
    assert ("expect_column_values_to_be_unique", "period_start") in kinds
    for col in CHURN_PERIOD_COUNT_COLUMNS:
        (kw,) = _find(suite, "expect_column_values_to_be_between", col)
        assert kw["min_value"] == 0 and kw.get("max_value") is None
    (rate,) = _find(suite, "expect_column_values_to_be_between", "churn_rate")
    assert (rate["min_value"], rate["max_value"]) == (0, 1)
    (rate_nn,) = _find(suite, "expect_column_values_to_not_be_null", "churn_rate")
    assert rate_nn.get("row_condition") is not None  # only where customers_start > 0
    (pair,) = _find(suite, "expect_column_pair_values_a_to_be_greater_than_b")
    assert (pair["column_A"], pair["column_B"], bool(pair.get("or_equal"))) == (
        "period_end", "period_start", False)
    (rows,) = _find(suite, "expect_table_row_count_to_be_between")
    assert rows["min_value"] == 1


def test_builders_return_fresh_unregistered_suites():
    # Building twice gives equal, independent suites (no context, no ids yet).
    a, b = raw_table_suite(TABLES["orders"]), raw_table_suite(TABLES["orders"])
    assert a is not b and _kinds(a) == _kinds(b)
    assert a.id is None
