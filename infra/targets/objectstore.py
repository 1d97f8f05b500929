"""The layout of the platform's object store on the clouds with one bucket (AWS S3, GCS): a prefix per kind."""

from __future__ import annotations

#: Key prefixes inside the artifact bucket, one per kind of object.
PREFIXES = {
    "mlflow": "mlflow",            # MLflow artifacts (the registry's artifact_uri)
    "packages": "packages",        # content-addressed pipelines wheels
    "configs": "configs",          # run configurations, one per model
    "data": "data",                # datasets the pipelines read
    "inference": "inference",      # the serving process's Parquet inference logs
    "reports": "reports",          # drift reports
    "training": "training",        # training steps' outputs and hand-over files
}
