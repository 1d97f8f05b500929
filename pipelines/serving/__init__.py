"""The model server every target runs: MLflow's scoring protocol over a lean ASGI app.

`python -m pipelines serve --config run.json` loads `models:/<model>@<alias>` from the registry and
serves it (see `pipelines.serving.server`). Only the `pipelines` extra is imported here: no infra code.
"""
