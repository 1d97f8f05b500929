"""shipyard's ML pipelines: the code that runs inside whatever compute a target provisions.

Entry point: `python -m pipelines STEP` (console script `shipyard-pipelines`), see `pipelines.__main__`.

- `contract`, `config`: the run-configuration sections infra's spec is built on, and the run configuration
  (`infra/runconfig.py` writes it; `load_config` reads it).
- `demo`, `data`, `storage`: the seeded demo dataset; CSV / Parquet from any fsspec URI; content hashes.
- `validation`: reference data profiles and data validation reports.
- `train`, `catalog`: the scikit-learn Pipeline; the estimator, metric (and direction) and trigger names.
- `plugins`: `resolve('module:attr')`, the one loader behind every name registry.
- `gates`, `plots`: metrics, the quality gates, model validation; evaluation plots.
- `registry`, `lineage`, `tracking`, `pipeline`: MLflow runs, versions, aliases, lineage tags, the phases.
- `steps`: the step functions the CLI calls; `monitor`, `triggers`: drift monitoring and retraining.
- `drift`, `sinks`: drift statistics, reports and metric sinks; `serving`: the model server;
  `adapters`: cloud-specific sinks and triggers.

Nothing here imports `infra`: the package runs alone from its wheel.
"""
