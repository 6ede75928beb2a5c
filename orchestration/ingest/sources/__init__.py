"""Source adapters: each writes a landing folder that follows the raw CRM contract.

Every adapter exposes ``write_landing(dest: Path, **options) -> dict[str, int]`` (rows written
per table).  ``SOURCES`` maps the ``CHURN_SOURCE`` names to those functions.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestration.ingest.sources import cdnow, synthetic, telco

SOURCES: dict[str, Callable[..., dict[str, int]]] = {
    "cdnow": cdnow.write_landing,
    "telco": telco.write_landing,
    "synthetic": synthetic.write_landing,
}

__all__ = ["SOURCES"]
