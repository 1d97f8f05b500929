"""The Google APIs the platform uses and their service agents' addresses (pure: no SDK).

The plan's mocks compute the agents' addresses from the same table the program reads.
"""

from __future__ import annotations

#: APIs the stack enables (when `gcp.enable_apis`), one line per service the platform calls.
APIS = (
    "compute.googleapis.com", "servicenetworking.googleapis.com", "cloudkms.googleapis.com",
    "artifactregistry.googleapis.com", "iam.googleapis.com", "run.googleapis.com", "sqladmin.googleapis.com",
    "secretmanager.googleapis.com", "storage.googleapis.com", "workflows.googleapis.com",
    "workflowexecutions.googleapis.com", "cloudscheduler.googleapis.com", "eventarc.googleapis.com",
    "pubsub.googleapis.com", "monitoring.googleapis.com", "logging.googleapis.com",
)

#: Service -> the domain of its service agent, `service-<project number>@<domain>`.
SERVICE_AGENTS = {
    "storage.googleapis.com": "gs-project-accounts.iam.gserviceaccount.com",
    "sqladmin.googleapis.com": "gcp-sa-cloud-sql.iam.gserviceaccount.com",
    "artifactregistry.googleapis.com": "gcp-sa-artifactregistry.iam.gserviceaccount.com",
    "secretmanager.googleapis.com": "gcp-sa-secretmanager.iam.gserviceaccount.com",
    "pubsub.googleapis.com": "gcp-sa-pubsub.iam.gserviceaccount.com",
    "monitoring.googleapis.com": "gcp-sa-monitoring-notification.iam.gserviceaccount.com",
}
#: Agents that exist only once created (`projects.ServiceIdentity`); the storage agent always exists.
CREATED_AGENTS = ("sqladmin.googleapis.com", "artifactregistry.googleapis.com", "secretmanager.googleapis.com",
                  "pubsub.googleapis.com", "monitoring.googleapis.com")
#: Agents that encrypt the platform's data with its key.
KMS_AGENTS = ("storage.googleapis.com", "sqladmin.googleapis.com", "artifactregistry.googleapis.com",
              "secretmanager.googleapis.com", "pubsub.googleapis.com")


def service_agent(project_number: str, service: str) -> str:
    """The e-mail address of a service's agent in a project."""
    return f"service-{project_number}@{SERVICE_AGENTS[service]}"


def run_url(service: str, project_number: str, region: str) -> str:
    """A Cloud Run service's deterministic URL (`https://<service>-<project number>.<region>.run.app`)."""
    return f"https://{service}-{project_number}.{region}.run.app"
