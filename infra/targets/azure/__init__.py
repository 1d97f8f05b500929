"""The Azure target: the platform on Azure's managed services (Container Apps, PostgreSQL Flexible Server,
Blob Storage, Key Vault, Azure Monitor), with no cluster to operate. See docs/azure.md."""
