"""Model stage of the churn pipeline: features, training, evaluation, scoring, registry.

Plain Python on purpose: nothing in this package imports ``orchestration`` or
``dagster``, so the model code can be tested and reused without the orchestrator.
"""
