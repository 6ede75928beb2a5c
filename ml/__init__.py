"""Model stage of the churn pipeline: features, training + backtest, calibration, the quality
gate, scoring (drivers, actions, value at risk), drift, registry and report tables.

Plain Python on purpose: nothing in this package imports ``orchestration`` or
``dagster``, so the model code can be tested and reused without the orchestrator.
"""
