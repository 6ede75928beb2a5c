"""Great Expectations suites and the runner that validates pandas frames with them.

Importing this package is cheap: Great Expectations is imported on first use.
Nothing here imports ``orchestration`` or ``dagster``.
"""

from expectations.runner import ValidationSummary, get_context, validate_frame
from expectations.suites import ColumnLike, TableLike, churn_period_suite, raw_table_suite

__all__ = [
    "ColumnLike",
    "TableLike",
    "ValidationSummary",
    "churn_period_suite",
    "get_context",
    "raw_table_suite",
    "validate_frame",
]
