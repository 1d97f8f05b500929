"""Fixtures of the Azure target's tests: a project copy with extra stacks, cached captures, Azurite on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import free_port
from stack_copies import extra_stack_fixtures

#: The other branches: an existing VNet, GPU training in a serverless-GPU region, an external database in Key
#: Vault, a webhook from a Pulumi secret, blue/green, api_key auth, scale to zero.
EDGE_STACK = """\
config:
  shipyard:target: azure
  shipyard:environment: staging
  shipyard:region: swedencentral
  shipyard:networking:
    existing_network: "/subscriptions/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/resourceGroups/net-rg/\\
      providers/Microsoft.Network/virtualNetworks/hub"
    allowed_cidrs: [203.0.113.0/24]
  shipyard:azure: {vnet_cidr: 10.60.4.0/22, gpu_workload_profile: Consumption-GPU-NC24-A100}
  shipyard:training: {size: gpu, gpu_count: 1}
  shipyard:registry:
    database:
      external_url: {ref: "https://corp-vault.vault.azure.net/secrets/mlflow-db"}
  shipyard:models:
    - name: churn
      serving: {min_replicas: 0, auth: api_key, rollout: {strategy: blue_green}}
      monitoring:
        min_quality: {roc_auc: 0.8}
        alerts:
          - {kind: webhook, url: {secure: v1:aHR0cHM6Ly9ob29rcy5leGFtcGxlLmNvbS9hYmM=}}
"""

#: The longest names a spec allows: a 40-character platform name, 'staging', a 40-character model name.
LONG_NAME, LONG_MODEL = "p" * 20 + "-" + "q" * 19, "m" * 40
LONG_STACK = f"""\
config:
  shipyard:target: azure
  shipyard:name: {LONG_NAME}
  shipyard:environment: staging
  shipyard:region: westeurope
  shipyard:models:
    - {{name: churn, remove: true}}
    - name: {LONG_MODEL}
"""

#: A prod stack asking for a public endpoint and GPUs where there are none: refused.
REFUSED_STACK = """\
config:
  shipyard:target: azure
  shipyard:environment: prod
  shipyard:region: West Europe
  shipyard:training: {size: gpu, gpu_count: 2}
  shipyard:models:
    - name: churn
      serving: {public: true}
"""

EXTRA_STACKS = {"azure-edge": EDGE_STACK, "azure-long": LONG_STACK, "azure-refused": REFUSED_STACK}


project, captured = extra_stack_fixtures(EXTRA_STACKS)



#: Where .ci/run installs Azurite from npm (AZURITE_DIR overrides).
AZURITE_DIR = Path(os.environ.get("AZURITE_DIR", Path.home() / ".cache" / "shipyard" / "azurite"))
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str | None:
    """The azurite-blob executable: the npm cache directory's, else one on PATH."""
    local = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob service on loopback for the session; the environment points every Azure client at it."""
    binary = azurite_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("azurite-blob is not installed: .ci/run installs it with npm")
        pytest.skip(f"azurite-blob is not installed (npm install azurite in {AZURITE_DIR})")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
         str(tmp_path_factory.mktemp("azurite")), "--skipApiVersionCheck", "--disableTelemetry", "--loose",
         "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("Azurite did not start")
    connection = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                  f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    saved = {key: os.environ.get(key) for key in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME")}
    os.environ.update({"AZURE_STORAGE_CONNECTION_STRING": connection, "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT})
    try:
        yield connection
    finally:
        process.terminate()
        process.wait(timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
