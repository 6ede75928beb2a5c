"""Prepare the landing folder for the configured source (adapters write the raw contract)."""

from __future__ import annotations

from pathlib import Path

from orchestration.ingest.loader import check_landing, find_files
from orchestration.settings import Settings


def prepare_landing(settings: Settings) -> tuple[Path, dict[str, int]]:
    """Write (or, for source=folder, check) the landing files. Returns folder and file counts."""
    landing = settings.resolved_landing_dir
    if settings.source != "folder":
        from orchestration.ingest.sources import SOURCES  # import late: adapters pull in data packages

        writer = SOURCES[settings.source]
        if settings.source == "synthetic":
            writer(landing, n_customers=settings.synthetic_customers, seed=settings.seed)
        else:
            writer(landing)
    check_landing(landing)
    from orchestration.ingest.contract import TABLES

    return landing, {t: len(find_files(landing, t)) for t in TABLES}
