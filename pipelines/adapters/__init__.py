"""Runtime adapters for the cloud targets: sinks, retraining triggers and readers that need a cloud SDK.

Each module is imported only when a run configuration names one of its classes (through the registries in
`pipelines.sinks` and `pipelines.triggers`), and imports its SDK only when called, so the local and
Kubernetes targets never load boto3 or any other cloud SDK.
"""
