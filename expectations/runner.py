"""Run a Great Expectations suite against a pandas DataFrame (GX 1.x, no dagster-ge).

* One ephemeral Data Context per process, created lazily on first use and reused
  (GX is slow to import and to build contexts).  Progress bars and analytics are off.
* Frames are validated through a pandas datasource: one dataframe asset per
  ``batch_name`` (default: the suite name) with a whole-dataframe batch definition,
  and a ``ValidationDefinition``.  Suites and validation definitions are
  add-or-updated, so validating the same suite (or a changed suite of the same
  name) again in one process works.
* With ``docs_dir`` the result is rendered into a filesystem Data Docs site in that
  directory.  The suites and results behind the site are persisted under
  ``<docs_dir>/_gx_store/`` so that the index keeps the pages written by other
  processes (Dagster runs steps in separate processes); only the newest
  :data:`DOCS_HISTORY` results per suite and batch are kept.

This module never imports ``orchestration`` or ``dagster``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import great_expectations as gx
    import pandas as pd

__all__ = ["DOCS_HISTORY", "ValidationSummary", "get_context", "validate_frame"]

DATASOURCE_NAME = "pipeline_frames"
BATCH_DEFINITION_NAME = "whole_frame"
STORE_SUBDIR = "_gx_store"
# Results kept (and rendered) per suite and batch in a docs directory.
DOCS_HISTORY = 20
# Sample values per failure kept by GX and shown in a failure line.
PARTIAL_UNEXPECTED_COUNT = 5
SAMPLES_SHOWN = 3
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
    "include_unexpected_rows": False,
}

_LOCK = threading.RLock()  # a GX context is not thread-safe
_CONTEXT: Any = None
_DOCS_SITES: dict[str, tuple[str, str, str]] = {}  # resolved docs dir -> (site, suites store, results store)
_RENDERED_SUITES: dict[tuple[str, str], str] = {}  # (docs dir, suite) -> suite JSON last rendered


# --------------------------------------------------------------------------- summary


@dataclass
class ValidationSummary:
    """The outcome of one suite run, in plain Python types."""

    suite: str
    success: bool
    evaluated: int
    successful: int
    failures: list[str] = field(default_factory=list)
    docs_index: str | None = None
    statistics: dict = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.evaluated - self.successful

    def to_markdown(self, max_failures: int = 20) -> str:
        """A short Markdown table (for Dagster metadata / logs)."""
        status = "PASSED" if self.success else "FAILED"
        lines = [
            "| suite | status | evaluated | successful | failed |",
            "|---|---|---:|---:|---:|",
            f"| `{self.suite}` | {status} | {self.evaluated} | {self.successful} | {self.failed} |",
        ]
        if self.failures:
            lines += ["", "| failed expectation |", "|---|"]
            for line in self.failures[:max_failures]:
                lines.append(f"| `{_md_cell(line)}` |")
            if len(self.failures) > max_failures:
                lines.append(f"| ... and {len(self.failures) - max_failures} more |")
        if self.docs_index:
            lines += ["", f"Data Docs: `{self.docs_index}`"]
        return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


# --------------------------------------------------------------------------- context


def get_context() -> gx.data_context.AbstractDataContext:
    """The process-wide ephemeral GX context (created on first call)."""
    global _CONTEXT
    with _LOCK:
        if _CONTEXT is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx_module
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx_module.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            context.enable_analytics(False)
            context.data_sources.add_pandas(DATASOURCE_NAME)
            _CONTEXT = context
        return _CONTEXT


def _batch_definition(context: Any, asset_name: str) -> Any:
    datasource = context.data_sources.get(DATASOURCE_NAME)
    if asset_name in datasource.get_asset_names():
        asset = datasource.get_asset(asset_name)
    else:
        asset = datasource.add_dataframe_asset(name=asset_name)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except (KeyError, LookupError, ValueError):
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)


def _docs_site(context: Any, docs_dir: Path) -> tuple[str, str, str]:
    """Register (once) a filesystem Data Docs site plus the persistent stores behind it."""
    key = str(docs_dir)
    if key in _DOCS_SITES:
        return _DOCS_SITES[key]
    tag = hashlib.sha1(key.encode()).hexdigest()[:10]
    site_name = f"site_{tag}"
    suites_store = f"suites_{tag}"
    results_store = f"results_{tag}"
    store_root = docs_dir / STORE_SUBDIR
    context.add_store(
        suites_store,
        {
            "class_name": "ExpectationsStore",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(store_root / "expectations"),
            },
        },
    )
    context.add_store(
        results_store,
        {
            "class_name": "ValidationResultsStore",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(store_root / "validations"),
            },
        },
    )
    site_config = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "site_section_builders": {
            "expectations": {"source_store_name": suites_store},
            "validations": {"source_store_name": results_store},
            "profiling": "None",
        },
    }
    if site_name in context.list_data_docs_sites():
        context.update_data_docs_site(site_name, site_config)
    else:
        context.add_data_docs_site(site_name, site_config)
    _DOCS_SITES[key] = (site_name, suites_store, results_store)
    return _DOCS_SITES[key]


def _publish_docs(
    context: Any, docs_dir: Path, suite: Any, result: Any, batch_identifier: str
) -> str:
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    docs_dir = docs_dir.expanduser().resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    site_name, suites_store_name, results_store_name = _docs_site(context, docs_dir)
    suites_store = context.stores[suites_store_name]
    results_store = context.stores[results_store_name]

    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    suite_json = json.dumps(suite.to_json_dict(), sort_keys=True, default=str)
    suite_key = (str(docs_dir), suite.name)
    suite_page = docs_dir / "expectations" / f"{suite.name}.html"
    # Rendering a page costs ~0.3-0.5 s (GX recompiles its Jinja templates), so the
    # suite page is only re-rendered when the suite changed or the page is gone.
    render_suite = _RENDERED_SUITES.get(suite_key) != suite_json or not suite_page.is_file()
    suites_store.set(suite_id, suite)
    result_id = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id,
        run_id=result.meta["run_id"],
        batch_identifier=batch_identifier,
    )
    results_store.set(result_id, result)

    # keep the newest DOCS_HISTORY results of this suite and batch; the index builder
    # then removes the pages of the pruned results.
    same = [
        k
        for k in results_store.list_keys()
        if k.expectation_suite_identifier.name == suite.name
        and k.batch_identifier == result_id.batch_identifier
    ]
    same.sort(key=lambda k: str(k.run_id.run_time), reverse=True)
    for old in same[DOCS_HISTORY:]:
        results_store.remove_key(old)

    resources = [suite_id, result_id] if render_suite else [result_id]
    context.build_data_docs(site_names=[site_name], resource_identifiers=resources)
    _RENDERED_SUITES[suite_key] = suite_json
    index = docs_dir / "index.html"
    return str(index)


def _take_result_key(context: Any, suite_name: str, run_id: Any) -> Any:
    """Find the key GX stored this run's result under, and drop the in-memory copy.

    ``ValidationDefinition.run`` always writes its result into the context's
    (in-memory) validation results store; removing it keeps a long-lived process
    from accumulating every result it ever produced.
    """
    store = context.validation_results_store
    found = None
    for key in store.list_keys():
        if key.expectation_suite_identifier.name == suite_name and key.run_id == run_id:
            found = key
            store.remove_key(key)
    return found


# --------------------------------------------------------------------------- validate


def validate_frame(
    df: pd.DataFrame,
    suite: gx.ExpectationSuite,
    *,
    docs_dir: Path | None = None,
    batch_name: str | None = None,
) -> ValidationSummary:
    """Validate ``df`` against ``suite``; optionally render Data Docs into ``docs_dir``.

    ``batch_name`` names the dataframe asset (and the run in Data Docs); it defaults
    to the suite name.  The suite object is add-or-updated in the process context
    (GX assigns ids to it and its expectations).  Never raises on failed
    expectations: inspect ``success`` / ``failures``.
    """
    import great_expectations as gx_module
    from great_expectations.core.run_identifier import RunIdentifier

    asset_name = batch_name or suite.name
    started = time.perf_counter()
    with _LOCK:
        context = get_context()
        batch_definition = _batch_definition(context, asset_name)
        stored_suite = context.suites.add_or_update(suite)
        vd_name = f"{suite.name}::{asset_name}"
        validation = context.validation_definitions.add_or_update(
            gx_module.ValidationDefinition(name=vd_name, data=batch_definition, suite=stored_suite)
        )
        run_id = RunIdentifier(
            run_name=asset_name, run_time=dt.datetime.now(dt.timezone.utc)
        )
        result = validation.run(
            batch_parameters={"dataframe": df},
            result_format=dict(RESULT_FORMAT),
            run_id=run_id,
        )
        validated = time.perf_counter()
        key = _take_result_key(context, suite.name, run_id)
        batch_identifier = str(key.batch_identifier) if key is not None else asset_name
        docs_index = (
            _publish_docs(context, Path(docs_dir), stored_suite, result, batch_identifier)
            if docs_dir is not None
            else None
        )

    stats = dict(result.statistics or {})
    evaluated = int(stats.get("evaluated_expectations", len(result.results)))
    successful = int(stats.get("successful_expectations", sum(r.success for r in result.results)))
    stats["rows"] = int(len(df))
    stats["validation_seconds"] = round(validated - started, 3)
    stats["total_seconds"] = round(time.perf_counter() - started, 3)
    # GX does not return results in suite order; report failures in suite order.
    order = {e.id: i for i, e in enumerate(stored_suite.expectations)}
    failed = [r for r in result.results if not r.success]
    failed.sort(key=lambda r: order.get(getattr(r.expectation_config, "id", None), len(order)))
    failures = [_failure_line(r) for r in failed]
    return ValidationSummary(
        suite=suite.name,
        success=bool(result.success),
        evaluated=evaluated,
        successful=successful,
        failures=failures,
        docs_index=docs_index,
        statistics=stats,
    )


# --------------------------------------------------------------------------- failure lines


def _failure_line(res: Any) -> str:
    """``expect_x(col[, col2]): <what went wrong>`` in one line."""
    config = res.expectation_config
    kwargs = dict(config.kwargs or {})
    name = config.type
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    columns += list(kwargs.get("column_list") or [])
    where = _condition_text(kwargs.get("row_condition"))
    target = ", ".join(str(c) for c in columns)
    if where:
        target = f"{target} where {where}" if target else f"where {where}"
    head = f"{name}({target})" if target else name

    error = _exception_message(res.exception_info)
    if error:
        return f"{head}: error: {error}"

    result = res.result or {}
    if name == "expect_column_to_exist":
        return f"{head}: column is missing"
    if "unexpected_count" in result:
        count = int(result.get("unexpected_count") or 0)
        noun = "value" if count == 1 else "values"
        if name == "expect_column_values_to_not_be_null":
            return f"{head}: {count} null {noun}"
        samples = [_plain(v) for v in (result.get("partial_unexpected_list") or [])[:SAMPLES_SHOWN]]
        text = f"{head}: {count} unexpected {noun}"
        return f"{text}, e.g. {samples!r}" if samples else text
    if "observed_value" in result:
        return f"{head}: observed {_plain(result['observed_value'])!r}{_expected_text(kwargs)}"
    return f"{head}: failed"


def _expected_text(kwargs: dict) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f", expected >= {lo}"
    if lo is None:
        return f", expected <= {hi}"
    return f", expected between {lo} and {hi}"


def _condition_text(condition: Any) -> str:
    if not condition:
        return ""
    if isinstance(condition, dict):
        column = (condition.get("column") or {}).get("name", "?")
        if "operator" in condition:
            return f"{column} {condition['operator']} {condition.get('parameter')!r}"
        if "is_null" in condition:
            return f"{column} IS {'NULL' if condition['is_null'] else 'NOT NULL'}"
    return str(condition)


def _exception_message(info: Any) -> str | None:
    """GX reports errors either flat or keyed by metric id; return the first message."""
    if not info:
        return None
    if isinstance(info, dict) and "raised_exception" in info:
        if info.get("raised_exception"):
            return _first_line(info.get("exception_message"))
        return None
    if isinstance(info, dict):
        for value in info.values():
            message = _exception_message(value)
            if message:
                return message
    return None


def _first_line(message: Any) -> str:
    text = str(message or "").strip()
    if text.startswith("Error: "):
        text = text[len("Error: ") :]
    return text.splitlines()[0] if text else "unknown error"


def _plain(value: Any) -> Any:
    """Make a sample value readable: numpy/pandas scalars -> Python, dates -> ISO text."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if isinstance(value, tuple) else [
            _plain(v) for v in value
        ]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None:
        return None
    type_name = type(value).__name__
    if type_name in ("datetime64", "Timestamp") or isinstance(value, (dt.datetime, dt.date)):
        try:
            import pandas as pd

            ts = pd.Timestamp(value)
            if pd.isna(ts):
                return None
            if ts == ts.normalize():
                return ts.date().isoformat()
            return ts.isoformat()
        except (TypeError, ValueError):
            return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
