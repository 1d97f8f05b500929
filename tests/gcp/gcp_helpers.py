"""Constants the GCP tests share with their fixtures (a module name of its own: every test directory has a
conftest, and `from conftest import ...` would find another directory's when several run together)."""

#: The bucket the GCS emulator starts with.
BUCKET = "shipyard-test-artifacts"
#: The gcp-pinned stack's runtime image: pinned by digest, so nothing is built.
PINNED_IMAGE = "europe-docker.pkg.dev/acme-ml/runtime/shipyard@sha256:" + "7" * 64
#: The longest names a spec allows: a 40-character platform name, 'staging', a 40-character model name.
LONG_NAME, LONG_MODEL = "p" * 20 + "-" + "q" * 19, "m" * 40
