"""Screenshots for the docs: the Dagster UI asset graph and the HTML report of a real run.

    python scripts/screenshots.py            # the last `make run` (./data and ./.dagster_home)
    python scripts/screenshots.py --fresh    # run CDNOW into a temporary directory first

Writes docs/screenshots/ui-asset-graph.png and docs/screenshots/report.png, using headless Debian
Chromium (sh scripts/ensure_chromium.sh installs it) driven by Playwright.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "browser"))

from browser_helpers import (  # noqa: E402
    CHROMIUM, CHROMIUM_ARGS, open_asset_graph, pipeline_env, run_pipeline, stage_keys, start_dagster_dev,
    stop_process_group,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fresh", action="store_true", help="run the pipeline (CHURN_SOURCE, default cdnow) "
                    "into a temporary directory first")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} is missing; run `sh scripts/ensure_chromium.sh` as root", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="churn-screenshots-") as tmp:
        if args.fresh:
            env = pipeline_env(Path(tmp) / "dagster_home", Path(tmp) / "data",
                               CHURN_SOURCE=os.environ.get("CHURN_SOURCE", "cdnow"))
            print("running the pipeline ...", flush=True)
            run_pipeline(env)
        else:
            env = pipeline_env(Path(os.environ.get("DAGSTER_HOME", REPO / ".dagster_home")),
                               Path(os.environ.get("CHURN_DATA_DIR", REPO / "data")),
                               **{k: v for k, v in os.environ.items() if k.startswith("CHURN_")})
        report = Path(env["CHURN_DATA_DIR"]) / "published" / "report" / "index.html"
        if not report.exists():
            print(f"error: no report at {report}; run `make run` first (or pass --fresh)", file=sys.stderr)
            return 2
        args.out.mkdir(parents=True, exist_ok=True)
        print("starting dagster dev ...", flush=True)
        proc, base = start_dagster_dev(env, Path(tmp) / "dagster_dev.log")
        try:
            keys, groups = stage_keys(base)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                found = open_asset_graph(page, base, keys, groups)
                missing = [k for k, v in found.items() if v is None]
                if missing:
                    print(f"warning: no node on screen for {missing}", file=sys.stderr)
                page.screenshot(path=str(args.out / "ui-asset-graph.png"))
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.route("http*://**", lambda route: route.abort())  # the report needs no network
                page.goto(report.as_uri(), wait_until="load")
                page.screenshot(path=str(args.out / "report.png"), full_page=True)
                browser.close()
        finally:
            stop_process_group(proc)
    for name in ("ui-asset-graph.png", "report.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
