# syntax=docker/dockerfile:1
# The one runtime image every shipyard target runs: Python and the dependencies of `pipelines` (which include
# MLflow's tracking server and the model server's ASGI stack), under a non-root user, and nothing else.
# The pipelines code is not in the image: each target ships the content-addressed wheel into its compute
# (an immutable ConfigMap on Kubernetes), so a code change needs no image rebuild.
#
# The base is pinned by digest; CD refreshes it (see docs/kubernetes.md, "The runtime image"):
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Exactly the `pipelines` extra of pyproject.toml, specifiers identical; the wheel declares the same set
# (tests/kubernetes/test_dockerfile.py keeps the three equal).
RUN python -m pip install --no-cache-dir \
        "pydantic>=2.7,<3" \
        "mlflow>=3.10,<4" \
        "psycopg2-binary>=2.9" \
        "boto3>=1.34" \
        "s3fs>=2025" \
        "sagemaker-mlflow>=0.5" \
        "gcsfs>=2025" \
        "google-cloud-storage>=2.18" \
        "adlfs>=2024.7" \
        "azure-storage-blob>=12.19" \
        "azure-identity>=1.15" \
        "scikit-learn>=1.5,<2" \
        "pandas>=2.2" \
        "pyarrow>=15" \
        "numpy>=1.26" \
        "scipy>=1.11" \
        "matplotlib>=3.8" \
        "fsspec>=2024.6" \
        "starlette>=0.40" \
        "uvicorn>=0.30" \
        "uvloop>=0.19" \
        "httptools>=0.6" \
        "orjson>=3.10"

# uid/gid 10001: what every pod's securityContext asks for (runAsNonRoot, runAsUser 10001).
RUN groupadd --system --gid 10001 shipyard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/shipyard --create-home \
       --shell /usr/sbin/nologin shipyard

# SageMaker hosting runs `<image> serve` and its container definition has no command, so the image answers
# `serve` itself: install the wheel SageMaker copied to $SHIPYARD_PACKAGE_DIR and run the model server.
# Every other caller (Kubernetes, SageMaker jobs, ECS) sets its own command and never reaches this.
RUN printf '%s\n' '#!/bin/sh' 'set -eu' \
        'if [ "${1:-}" = "serve" ]; then' \
        '  python -m pip install --quiet --no-deps --no-index --target /tmp/shipyard-pipelines "$SHIPYARD_PACKAGE_DIR"/*.whl' \
        '  export PYTHONPATH=/tmp/shipyard-pipelines' \
        '  exec python -m pipelines serve --host 0.0.0.0 --port 8080' \
        'fi' \
        'exec "$@"' > /usr/local/bin/shipyard-entrypoint \
    && chmod 0755 /usr/local/bin/shipyard-entrypoint

USER 10001:10001
WORKDIR /home/shipyard
ENTRYPOINT ["/usr/local/bin/shipyard-entrypoint"]
CMD ["python"]
