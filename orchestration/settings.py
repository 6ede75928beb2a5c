"""One typed settings object, read from environment variables with defaults.

Every other module gets its configuration from ``get_settings()``; nothing else reads
``os.environ`` for pipeline settings.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SOURCES = ("cdnow", "telco", "synthetic", "folder")
CHURN_DEFINITIONS = ("auto", "contractual", "inactivity")
PERIOD_GRAINS = ("week", "month", "quarter")
ACTIVITY_SOURCES = ("orders", "interactions", "support_tickets", "loyalty_events", "subscriptions")

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and the fix."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (_env(name, default) or default).lower()
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not valid; use one of {', '.join(allowed)}")
    return value


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)  # type: ignore[arg-type]
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer; set e.g. {name}={default}") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def _float(name: str, default: float, minimum: float = 0.0, maximum: float | None = None) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)  # type: ignore[arg-type]
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; set e.g. {name}={default}") from None
    if value != value or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise SettingsError(f"{name}={raw} must be {bound}")
    return value


def _date(name: str) -> date | None:
    raw = _env(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an ISO date; use YYYY-MM-DD") from None


def validate_identifier(value: str, what: str) -> str:
    """Identifiers that reach SQL (column / segment names) must match a strict pattern."""
    if not _IDENT.match(value):
        raise SettingsError(
            f"{what} {value!r} is not a safe identifier; use lower-case letters, digits and _"
        )
    return value


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable URL>"


def _postgres_url(name: str) -> str | None:
    """A ``postgresql://`` URL or None; errors show the URL without its password."""
    from urllib.parse import urlsplit

    raw = _env(name)
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError(f"{name}={redact_url(raw)!r} is not a valid URL; use "
                            "postgresql://user:password@host:5432/database") from None
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.path.strip("/") or parts.query):
        raise SettingsError(f"{name}={redact_url(raw)!r} is not a PostgreSQL URL; use "
                            "postgresql://user:password@host:5432/database")
    return raw


def is_within(path: Path, root: Path) -> bool:
    """True when ``path`` (symlinks resolved, even if it does not exist yet) lies inside ``root``."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def pause_for_tests(stage: str) -> None:
    """Test-only fault injection: with CHURN_TEST_PAUSE_AT=<stage>, announce and sleep at that stage.

    The crash tests SIGKILL the job while it sleeps here. Read at call time (not cached) and
    inert unless the variable names this exact stage.
    """
    if os.environ.get("CHURN_TEST_PAUSE_AT", "").strip() != stage:
        return
    import sys
    import time

    print(f"CHURN_TEST_PAUSED {stage}", file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("CHURN_TEST_PAUSE_SECONDS", "600")))


# CHURN_DRIVER_METHOD=auto: exact TreeSHAP drivers up to this many scored customers, Saabas above
EXACT_DRIVERS_MAX_ROWS = 200_000


@dataclass(frozen=True)
class Settings:
    source: str = "cdnow"
    landing_dir: Path | None = None  # required for source=folder
    data_dir: Path = REPO_ROOT / "data"
    as_of_date: date | None = None  # None = latest date in the data
    churn_definition: str = "auto"  # auto = contractual when subscriptions exist
    inactivity_days: int = 90
    grace_days: int = 7
    period_grain: str = "month"
    segment_dimensions: tuple[str, ...] = ()  # empty = every attribute column of customers
    activity_sources: tuple[str, ...] = ("orders",)  # what counts as activity for inactivity churn
    synthetic_customers: int = 2000
    seed: int = 42
    schedule_cron: str = "0 6 * * *"
    schedule_timezone: str = "UTC"
    # Dagster: the first day of the daily partitions of the dbt assets (the days a backfill can name)
    partition_start_date: date = date(1997, 1, 1)
    high_risk_threshold: float = 0.5
    medium_risk_threshold: float = 0.2
    future_date_tolerance_days: int = 1
    # ingest: a raw table whose quarantined share of rows exceeds this fails a blocking check
    quarantine_max_share: float = 0.05
    # ingest: money values (mrr, amount) above this are implausible and quarantined
    max_money_value: float = 10_000_000.0
    # publish: how many published versions stay under published/versions/ for rollback
    publish_keep_versions: int = 3
    # publish: segments with fewer customers are published with their figures nulled
    publish_min_segment_customers: int = 10
    # landing sensor (off by default): how often it looks, and how long files must be quiet
    sensor_interval_seconds: int = 60
    sensor_settle_seconds: int = 30
    # publish: also publish the set to this PostgreSQL database (None = off); never printed (repr=False)
    publish_postgres_url: str | None = field(default=None, repr=False)
    # publish: the live schema there (staging and old copies get a suffix, so at most 45 characters)
    publish_postgres_schema: str = "churn"
    # dbt: rebuild the incremental models in full (`dbt build --full-refresh`) instead of only the touched periods
    full_refresh: bool = False
    # DuckDB (the loader, the checks, dbt): the memory it may use before spilling to disk. Bounded so a
    # 1M-customer run fits beside Python and XGBoost (DuckDB's own default is 80% of RAM).
    duckdb_memory_limit: str = "4GB"
    # ml: serve the newest passing model again while it is younger than this many days (0 = train every run)
    retrain_days: float = 7.0
    # ml: above this many labelled observation rows, train on a seeded sample stratified by label x date (0 = all)
    max_train_rows: int = 200_000
    # ml: top drivers by exact TreeSHAP or the ~50x faster Saabas attribution; auto = exact up to
    # EXACT_DRIVERS_MAX_ROWS scored customers (exact SHAP costs ~0.3 ms per customer on 2 cores)
    driver_method: str = "auto"
    extra: dict[str, str] = field(default_factory=dict)

    def drivers_for(self, n_scored: int) -> str:
        """The driver method for a scoring run of ``n_scored`` customers (``auto`` resolved)."""
        if self.driver_method != "auto":
            return self.driver_method
        return "exact" if n_scored <= EXACT_DRIVERS_MAX_ROWS else "approx"

    @property
    def duckdb_config(self) -> dict[str, str]:
        """DuckDB connection settings for the private warehouse (duckdb.connect(config=...))."""
        return {"memory_limit": self.duckdb_memory_limit}

    # --- derived paths -------------------------------------------------------
    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def warehouse_path(self) -> Path:
        # one private warehouse per source (and per landing folder for source=folder), so the
        # SCD2 snapshot never mixes two datasets
        if self.source == "folder" and self.landing_dir is not None:
            import hashlib

            tag = hashlib.sha256(str(self.landing_dir).encode()).hexdigest()[:8]
            return self.warehouse_dir / f"folder-{tag}.duckdb"
        return self.warehouse_dir / f"{self.source}.duckdb"

    @property
    def published_dir(self) -> Path:
        return self.data_dir / "published"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models" / self.source

    @property
    def gx_docs_dir(self) -> Path:
        return self.data_dir / "gx_docs"

    @property
    def resolved_landing_dir(self) -> Path:
        if self.source == "folder":
            if self.landing_dir is None:
                raise SettingsError(
                    "CHURN_SOURCE=folder needs CHURN_LANDING_DIR (make run SOURCE=folder LANDING=<dir>)"
                )
            return self.landing_dir
        return self.landing_dir or (self.data_dir / "landing" / self.source)

    def check_paths(self) -> None:
        """Everything the pipeline writes stays inside CHURN_DATA_DIR (symlinks resolved).

        The landing folder of source=folder is the user's and may be anywhere (it is only read); the
        other sources write their landing folder, so it must be inside CHURN_DATA_DIR too.
        """
        root = self.data_dir.resolve()
        written = [("warehouse", self.warehouse_path), ("published folder", self.published_dir),
                   ("model registry", self.models_dir), ("Data Docs", self.gx_docs_dir)]
        if self.source != "folder":
            written.append(("landing folder (CHURN_LANDING_DIR)", self.resolved_landing_dir))
        for what, path in written:
            if not is_within(path, root):
                raise SettingsError(
                    f"the {what} {path} resolves to {path.resolve()}, outside CHURN_DATA_DIR={root}; "
                    "remove the symlink or point CHURN_DATA_DIR at a folder that contains it"
                )


def _postgres_schema(name: str) -> str:
    value = validate_identifier((_env(name, "churn") or "churn").lower(), name)
    if len(value) > 45 or value == "public" or value.startswith("pg_") or value == "information_schema":
        raise SettingsError(f"{name}={value!r} cannot be used; choose a schema of its own, at most 45 characters "
                            "(the publisher replaces it whole)")
    return value


def _timezone(name: str, default: str) -> str:
    """An IANA time zone name (the schedule's and the daily partitions'), checked here for a clear error."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    raw = (_env(name, default) or default).strip()
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}={raw!r} is not a time zone; use an IANA name such as UTC or Europe/Berlin") from None
    return raw


def _memory_limit(name: str, default: str) -> str:
    """A DuckDB memory_limit such as 4GB, 512MB or 75% (DuckDB's own syntax, checked here for a clear error)."""
    raw = (_env(name, default) or default).strip()
    if not re.fullmatch(r"(\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)|\d{1,2}(\.\d+)?%)", raw, flags=re.IGNORECASE):
        raise SettingsError(f"{name}={raw!r} is not a memory size; use e.g. {name}=4GB, 512MB or 50%")
    return raw


def load_settings() -> Settings:
    landing = _env("CHURN_LANDING_DIR")
    dims = _env("CHURN_SEGMENT_DIMENSIONS", "") or ""
    dimensions = tuple(
        validate_identifier(d.strip().lower(), "CHURN_SEGMENT_DIMENSIONS entry")
        for d in dims.split(",")
        if d.strip()
    )
    sources = tuple(a.strip().lower() for a in (_env("CHURN_ACTIVITY_SOURCES", "orders") or "orders").split(",") if a.strip())
    for a in sources:
        if a not in ACTIVITY_SOURCES:
            raise SettingsError(f"CHURN_ACTIVITY_SOURCES entry {a!r} is not valid; use any of {', '.join(ACTIVITY_SOURCES)}")
    s = Settings(
        source=_choice("CHURN_SOURCE", "cdnow", SOURCES),
        landing_dir=Path(landing).expanduser().resolve() if landing else None,
        data_dir=Path(_env("CHURN_DATA_DIR", str(REPO_ROOT / "data"))).expanduser().resolve(),  # type: ignore[arg-type]
        as_of_date=_date("CHURN_AS_OF_DATE"),
        churn_definition=_choice("CHURN_DEFINITION", "auto", CHURN_DEFINITIONS),
        inactivity_days=_int("CHURN_INACTIVITY_DAYS", 90, minimum=1),
        grace_days=_int("CHURN_GRACE_DAYS", 7, minimum=0),
        period_grain=_choice("CHURN_PERIOD_GRAIN", "month", PERIOD_GRAINS),
        segment_dimensions=dimensions,
        activity_sources=sources or ("orders",),
        synthetic_customers=_int("CHURN_SYNTHETIC_CUSTOMERS", 2000, minimum=10),
        seed=_int("CHURN_SEED", 42),
        schedule_cron=_env("CHURN_SCHEDULE_CRON", "0 6 * * *") or "0 6 * * *",
        schedule_timezone=_timezone("CHURN_SCHEDULE_TIMEZONE", "UTC"),
        partition_start_date=_date("CHURN_PARTITION_START_DATE") or date(1997, 1, 1),
        future_date_tolerance_days=_int("CHURN_FUTURE_DATE_TOLERANCE_DAYS", 1, minimum=0),
        quarantine_max_share=_float("CHURN_QUARANTINE_MAX_SHARE", 0.05, minimum=0.0, maximum=1.0),
        max_money_value=_float("CHURN_MAX_MONEY_VALUE", 10_000_000.0, minimum=1.0),
        publish_keep_versions=_int("CHURN_PUBLISH_KEEP_VERSIONS", 3, minimum=1),
        publish_min_segment_customers=_int("CHURN_PUBLISH_MIN_SEGMENT_CUSTOMERS", 10, minimum=0),
        sensor_interval_seconds=_int("CHURN_SENSOR_INTERVAL_SECONDS", 60, minimum=5),
        sensor_settle_seconds=_int("CHURN_SENSOR_SETTLE_SECONDS", 30, minimum=0),
        publish_postgres_url=_postgres_url("CHURN_PUBLISH_POSTGRES_URL"),
        publish_postgres_schema=_postgres_schema("CHURN_PUBLISH_POSTGRES_SCHEMA"),
        full_refresh=(_env("CHURN_FULL_REFRESH", "") or "").strip().lower() in ("1", "true", "yes"),
        duckdb_memory_limit=_memory_limit("CHURN_DUCKDB_MEMORY_LIMIT", "4GB"),
        retrain_days=_float("CHURN_RETRAIN_DAYS", 7.0, minimum=0.0),
        max_train_rows=_int("CHURN_MAX_TRAIN_ROWS", 200_000, minimum=0),
        driver_method=_choice("CHURN_DRIVER_METHOD", "auto", ("auto", "exact", "approx")),
    )
    return s


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
