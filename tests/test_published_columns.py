"""Published column descriptions: one text in dbt YAML, rendered into the README."""

from pathlib import Path

from orchestration import published_columns as pc


def test_readme_published_tables_are_generated_from_dbt_yaml():
    text = pc.README.read_text()
    assert pc.readme_tables(text) == ["fct_churn_period", "fct_churn_segment_period", "fct_cohort_retention",
                                      "customer_churn_scores", "churn_risk_by_segment"]
    # regenerating changes nothing: the README says exactly what the YAML says
    assert pc.sync_readme(text, pc.load_docs()) == text
    assert pc.main(["--check-readme"]) == 0


def test_every_published_table_documents_every_column_once():
    from orchestration.assets.publish import PUBLISHED_TABLES

    docs = pc.load_docs()
    for name in PUBLISHED_TABLES:
        assert name in docs and docs[name].description
        assert all(docs[name].columns.values()), name


def test_render_and_sync_by_hand(tmp_path: Path):
    yml = tmp_path / "m.yml"
    yml.write_text(
        "version: 2\nmodels:\n  - name: t\n    description: One row per thing.\n    columns:\n"
        "      - name: a\n        description: >\n          first   column\n      - name: b\n"
        "        description: ratio a | b\n"
        "sources:\n  - name: s\n    tables:\n      - name: u\n        description: U.\n"
        "        columns:\n          - name: x\n            description: only x\n"
    )
    docs = pc.load_docs((yml,))
    assert set(docs) == {"t", "u"}
    assert docs["t"].columns == {"a": "first column", "b": "ratio a | b"}
    assert pc.render_table(docs["t"]) == (
        "**t**: One row per thing.\n\n| column | definition |\n|---|---|\n| a | first column |\n| b | ratio a \\| b |\n")
    readme = "x\n<!-- published-columns:u -->\nstale\n<!-- /published-columns -->\ny\n"
    assert pc.sync_readme(readme, docs) == (
        "x\n<!-- published-columns:u -->\n**u**: U.\n\n| column | definition |\n|---|---|\n| x | only x |\n"
        "<!-- /published-columns -->\ny\n")
