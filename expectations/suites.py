"""Great Expectations suites, built in code.

The raw-table suites are derived from the ingest contract, but this module never
imports it (``expectations`` sits below ``orchestration`` in the flow): the caller
passes in a table object, and anything with the attributes described by
:class:`TableLike` / :class:`ColumnLike` works.

Great Expectations is imported lazily (inside the builders), so importing this
module is cheap; the first builder call pays GX's import time.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    import great_expectations as gx

__all__ = [
    "CHURN_PERIOD_COLUMNS",
    "CHURN_PERIOD_COUNT_COLUMNS",
    "DATE_ORDER_RULES",
    "ColumnLike",
    "TableLike",
    "churn_period_suite",
    "raw_table_suite",
]


@runtime_checkable
class ColumnLike(Protocol):
    """What a suite builder needs to know about one contract column."""

    name: str
    sql_type: str
    required: bool
    allowed: Sequence[str]
    min_value: float | None
    max_value: float | None


@runtime_checkable
class TableLike(Protocol):
    """What a suite builder needs to know about one contract table."""

    name: str
    primary_key: str
    columns: Sequence[ColumnLike]
    references_customer: bool
    date_columns: Sequence[str]


# (earlier column, later column, later may equal earlier?)
# A rule applies to a table that has both columns; rows where either value is
# missing (open subscription, unresolved ticket) are ignored.
DATE_ORDER_RULES: tuple[tuple[str, str, bool], ...] = (
    # end_date is exclusive (first day without service), so it must be strictly later.
    ("start_date", "end_date", False),
    ("opened_at", "resolved_at", True),
)

CHURN_PERIOD_COUNT_COLUMNS: tuple[str, ...] = (
    "customers_start",
    "customers_new",
    "customers_reactivated",
    "customers_churned",
    "customers_end",
)
CHURN_PERIOD_COLUMNS: tuple[str, ...] = (
    "period_start",
    "period_end",
    *CHURN_PERIOD_COUNT_COLUMNS,
    "churn_rate",
)


def _gx() -> Any:
    """Import GX with analytics off (imported on first use, not at module import)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx_module

    return gx_module


def raw_table_suite(
    table: TableLike, *, columns: Collection[str] | None = None
) -> gx.ExpectationSuite:
    """Build the suite ``raw_<table.name>`` for one raw contract table.

    Expectations (in this order):

    * every required column (and the primary key / ``customer_id``) exists;
    * the primary key is not null and unique;
    * ``customer_id`` is not null on child tables (``references_customer``);
    * numeric columns lie within ``min_value``/``max_value`` where given;
    * enumerations lie within ``allowed``;
    * date order: ``end_date > start_date`` and ``resolved_at >= opened_at``
      (see :data:`DATE_ORDER_RULES`) where both values are present.

    Nulls: GX column-map expectations (between, in-set, pair) skip null values, so
    optional columns may be empty; only the key columns get not-null checks.

    ``columns``: the column names actually present in the frame to validate.  When
    given, checks on *optional* columns that are absent are left out (a missing
    optional column is legal); checks on required columns are always kept, so a
    missing required column is reported.  When ``None`` the frame is expected to
    carry every contract column (as the raw DuckDB tables do).
    """
    gx = _gx()
    gxe = gx.expectations

    contract_cols = list(table.columns)
    by_name = {c.name: c for c in contract_cols}
    pk = table.primary_key
    refs_customer = bool(getattr(table, "references_customer", False))
    present = None if columns is None else set(columns)

    must_exist: list[str] = []
    for name in [c.name for c in contract_cols if c.required] + [pk] + (
        ["customer_id"] if refs_customer else []
    ):
        if name not in must_exist:
            must_exist.append(name)

    def checked(name: str) -> bool:
        """Whether column-level checks on ``name`` belong in the suite."""
        if name in must_exist:
            return True
        if name not in by_name:
            return False
        return present is None or name in present

    # The suite is built from a list (not suite.add_expectation, which needs an
    # active Data Context), so building a suite never creates a context.
    exps: list[Any] = []
    add = exps.append

    for name in must_exist:
        add(gxe.ExpectColumnToExist(column=name))

    add(gxe.ExpectColumnValuesToNotBeNull(column=pk))
    add(gxe.ExpectColumnValuesToBeUnique(column=pk))
    if refs_customer and pk != "customer_id":
        add(gxe.ExpectColumnValuesToNotBeNull(column="customer_id"))

    for col in contract_cols:
        if not checked(col.name):
            continue
        lo = getattr(col, "min_value", None)
        hi = getattr(col, "max_value", None)
        if lo is not None or hi is not None:
            add(gxe.ExpectColumnValuesToBeBetween(column=col.name, min_value=lo, max_value=hi))
        allowed = tuple(getattr(col, "allowed", ()) or ())
        if allowed:
            add(gxe.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(allowed)))

    for earlier, later, or_equal in DATE_ORDER_RULES:
        if checked(earlier) and checked(later):
            add(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=later,
                    column_B=earlier,
                    or_equal=or_equal,
                    ignore_row_if="either_value_is_missing",
                )
            )

    return gx.ExpectationSuite(
        name=f"raw_{table.name}",
        expectations=exps,
        meta={
            "source": "expectations.suites.raw_table_suite",
            "contract_table": table.name,
            "primary_key": pk,
        },
    )


def churn_period_suite() -> gx.ExpectationSuite:
    """Build the suite ``fct_churn_period`` for the period churn facts table.

    * all eight columns exist and the table has at least one row;
    * ``period_start`` not null and unique; ``period_end`` not null and
      ``period_end > period_start``;
    * the five customer counts are ``>= 0``;
    * ``churn_rate`` lies in [0, 1]; it may be null only where ``customers_start = 0``
      (nulls are skipped by the range check, and a conditional not-null check
      covers rows with ``customers_start > 0``).
    """
    gx = _gx()
    gxe = gx.expectations
    from great_expectations.expectations.row_conditions import Column

    exps: list[Any] = []
    add = exps.append

    for name in CHURN_PERIOD_COLUMNS:
        add(gxe.ExpectColumnToExist(column=name))
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=None))

    add(gxe.ExpectColumnValuesToNotBeNull(column="period_start"))
    add(gxe.ExpectColumnValuesToBeUnique(column="period_start"))
    add(gxe.ExpectColumnValuesToNotBeNull(column="period_end"))
    add(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="period_end",
            column_B="period_start",
            or_equal=False,
            ignore_row_if="either_value_is_missing",
        )
    )

    for name in CHURN_PERIOD_COUNT_COLUMNS:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=None))

    add(gxe.ExpectColumnValuesToBeBetween(column="churn_rate", min_value=0, max_value=1))
    add(
        gxe.ExpectColumnValuesToNotBeNull(
            column="churn_rate", row_condition=Column("customers_start") > 0
        )
    )
    return gx.ExpectationSuite(
        name="fct_churn_period",
        expectations=exps,
        meta={"source": "expectations.suites.churn_period_suite"},
    )
