"""One description per published column, kept in dbt YAML and reused everywhere else.

The text lives in ``dbt_project/models/marts/_marts.yml`` (dbt models) and
``dbt_project/models/ml/_ml_outputs.yml`` (the Python-built ML tables, declared as a dbt source).
From there it reaches dbt docs directly, the Dagster UI as each published asset's
``TableSchema``, and the README's "Published tables" section, which is generated between
``<!-- published-columns:<table> -->`` markers::

    python -m orchestration.published_columns --write-readme   # rewrite the README blocks
    python -m orchestration.published_columns --check-readme   # exit 1 when they are stale

Reading the YAML (not dbt's manifest) keeps this usable before ``dbt parse`` has run.
"""

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
YAML_FILES = (ROOT / "dbt_project/models/marts/_marts.yml", ROOT / "dbt_project/models/ml/_ml_outputs.yml")
README = ROOT / "README.md"
_BLOCK = re.compile(r"(<!-- published-columns:(?P<table>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /published-columns -->)", re.S)


@dataclass(frozen=True)
class PublishedDoc:
    table: str
    description: str
    columns: dict[str, str]  # column -> one-line description, in published order


def load_docs(files: tuple[Path, ...] = YAML_FILES) -> dict[str, PublishedDoc]:
    """Every model or source table with described columns, by table name."""
    docs: dict[str, PublishedDoc] = {}
    for path in files:
        data = yaml.safe_load(path.read_text()) or {}
        entries = list(data.get("models") or [])
        for source in data.get("sources") or []:
            entries += list(source.get("tables") or [])
        for entry in entries:
            cols = {c["name"]: " ".join(str(c.get("description") or "").split()) for c in entry.get("columns") or []}
            if any(cols.values()):
                docs[entry["name"]] = PublishedDoc(entry["name"], " ".join(str(entry.get("description") or "").split()), cols)
    return docs


def undocumented(doc: PublishedDoc, columns: list[str]) -> list[str]:
    """Published columns with no description (a documentation defect, reported by tests)."""
    return [c for c in columns if not doc.columns.get(c)]


def render_table(doc: PublishedDoc) -> str:
    """The README block of one table: its grain line and a column | definition table."""
    lines = [f"**{doc.table}**: {doc.description}", "", "| column | definition |", "|---|---|"]
    lines += ["| " + c + " | " + text.replace("|", "\\|") + " |" for c, text in doc.columns.items()]
    return "\n".join(lines) + "\n"


def sync_readme(text: str, docs: dict[str, PublishedDoc]) -> str:
    """README text with every marked block regenerated from ``docs``."""
    def repl(m: re.Match) -> str:
        table = m.group("table")
        if table not in docs:
            raise KeyError(f"README marks a published-columns block for {table!r}, which has no described columns in dbt YAML")
        return m.group(1) + render_table(docs[table]) + m.group(4)
    return _BLOCK.sub(repl, text)


def readme_tables(text: str) -> list[str]:
    return [m.group("table") for m in _BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write-readme", action="store_true")
    group.add_argument("--check-readme", action="store_true")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = sync_readme(text, load_docs())
    if args.check_readme:
        if new != text:
            print(f"{README}: the Published tables section differs from dbt YAML; run "
                  "python -m orchestration.published_columns --write-readme", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print(f"{README}: {len(readme_tables(new))} published tables written from dbt YAML")
    return 0


if __name__ == "__main__":
    sys.exit(main())
