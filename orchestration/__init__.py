"""Dagster face of the churn pipeline. Thin assets over plain functions."""
