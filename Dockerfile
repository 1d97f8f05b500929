# syntax=docker/dockerfile:1
# The one runtime image every shipyard target runs: Python and the dependencies of `pipelines` (which include
# MLflow's tracking server and the model server's ASGI stack), and nothing else. The Pulumi program builds it
# for linux/amd64 and pushes it (infra/image.py, docs/image.md); every workload runs the pushed digest.
# The pipelines code is not in the image: each target ships the content-addressed wheel into its compute
# (an immutable ConfigMap on Kubernetes, S3 on AWS), so a code change needs no image rebuild.
#
# The base is pinned by digest; CD refreshes it (see docs/image.md):
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Exactly the locked closure of pyproject.toml's `pipelines` extra, every file checked against its hash, so two
# builds of the same tree install the same packages (regenerate the lock as docs/image.md says).
COPY requirements/runtime.lock /tmp/runtime.lock
RUN python -m pip install --no-cache-dir --require-hashes -r /tmp/runtime.lock && rm /tmp/runtime.lock

# uid/gid 10001: the non-root user Kubernetes pods (securityContext runAsUser/runAsGroup) and the ECS task
# (`user`) run as. The image's own default user stays root, because SageMaker training and hosting run the
# container as its default user and write /opt/ml (model, output, checkpoints).
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

WORKDIR /home/shipyard
ENTRYPOINT ["/usr/local/bin/shipyard-entrypoint"]
CMD ["python"]
