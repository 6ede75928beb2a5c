"""Ingest: the raw contract, source adapters, the landing loader and quarantine."""
