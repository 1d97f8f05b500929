"""Blob uploads that work with shared keys disabled: a Pulumi dynamic resource using Entra ID (RBAC).

pulumi-azure-native's `storage.Blob` writes with the account key, which a storage account with
`allow_shared_key_access=False` refuses (pulumi/pulumi-azure-native#2015). This resource uploads with
azure-storage-blob and DefaultAzureCredential in the deploying process instead (the deploying identity needs
Storage Blob Data Contributor, docs/azure.md); `AZURE_STORAGE_CONNECTION_STRING`, when set, wins (Azurite).
Content is addressed by its SHA-256: a changed content replaces the blob, an unchanged one does nothing, and
a deleted resource leaves the blob to the lifecycle policy (a running job may still be reading it).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pulumi
from pulumi import dynamic

#: The inputs that, when changed, mean a different blob.
_IDENTITY = ("account", "container", "blob", "sha256")


def blob_endpoint(account: str) -> str:
    """The blob service URL of an account."""
    return f"https://{account}.blob.core.windows.net"


def put_blob(props: dict[str, Any]) -> None:
    """Upload the content (`path` or `text`) to account/container/blob, overwriting."""
    from azure.storage.blob import BlobServiceClient, ContentSettings

    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection:
        service = BlobServiceClient.from_connection_string(connection)
    else:
        from azure.identity import DefaultAzureCredential

        service = BlobServiceClient(blob_endpoint(props["account"]), credential=DefaultAzureCredential())
    data = Path(props["path"]).read_bytes() if props.get("path") else props["text"].encode()
    if hashlib.sha256(data).hexdigest() != props["sha256"]:
        raise ValueError(f"{props['blob']}: the content changed after the plan (sha256 differs)")
    service.get_blob_client(props["container"], props["blob"]).upload_blob(
        data, overwrite=True, metadata=props.get("metadata") or None,
        content_settings=ContentSettings(content_type=props.get("contentType") or "application/octet-stream"))


class BlobProvider(dynamic.ResourceProvider):
    """Creates (and on a content change replaces) one blob."""

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Upload the blob."""
        put_blob(props)
        return dynamic.CreateResult(id_=f"{props['account']}/{props['container']}/{props['blob']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """A different account, container, name or content is a new blob."""
        replaces = [key for key in _IDENTITY if olds.get(key) != news.get(key)]
        return dynamic.DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)


class Blob(dynamic.Resource):
    """One uploaded blob: `path` (a file) or `text`, addressed by its SHA-256."""

    def __init__(self, name: str, *, account: pulumi.Input[str], container: str, blob: pulumi.Input[str],
                 sha256: pulumi.Input[str], path: str | None = None, text: pulumi.Input[str] | None = None,
                 content_type: str = "application/octet-stream", metadata: dict[str, str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(BlobProvider(), name, {
            "account": account, "container": container, "blob": blob, "sha256": sha256, "path": path,
            "text": text, "contentType": content_type, "metadata": metadata or {}}, opts)


def sha256_text(text: str) -> str:
    """The SHA-256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()
