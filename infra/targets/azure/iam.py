"""Managed identities and role assignments: one user-assigned identity per workload, each granted only the
built-in roles it uses, on the narrowest scope (a blob container, the registry, the vault, one job).

Role assignment names must be GUIDs and must not change between runs: they are uuid5 of the stack prefix,
the workload, the role and the scope's logical name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

#: Built-in role definition ids (the same in every Azure tenant).
ROLES = {
    "blob_contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor
    "blob_reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",       # Storage Blob Data Reader
    "acr_pull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",          # AcrPull
    "secrets_user": "4633458b-17de-408a-b874-0445c86b69e6",      # Key Vault Secrets User
    "metrics_publisher": "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
    # The AKS cluster profile: the control plane's, and the deployer's on the cluster (Kubernetes RBAC via Entra).
    "network_contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",  # Network Contributor
    "identity_operator": "f1a07417-d97a-45cb-824c-7a7467783830",    # Managed Identity Operator
    "aks_cluster_admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",    # Azure Kubernetes Service RBAC Cluster Admin
}
#: What the monitor needs to start its model's training job, as a custom role's actions.
START_JOB_ACTIONS = ("Microsoft.App/jobs/read", "Microsoft.App/jobs/start/action")
_NAMESPACE = uuid.UUID("5f0e1c2a-9d63-4b8e-a1f4-7c3d2b6e8a90")


def stable_guid(*parts: str) -> str:
    """A GUID that is the same for the same parts on every run (role assignment and definition names)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def role_definition_id(subscription: str, role: str) -> str:
    """The full id of a built-in role in a subscription."""
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{ROLES[role]}"


@dataclass
class Workload:
    """One workload's user-assigned identity."""

    name: str
    identity: managedidentity.UserAssignedIdentity
    #: Its role assignments: a workload depends on them, so it never starts before it may pull and read.
    grants: list[authorization.RoleAssignment] = field(default_factory=list)

    @property
    def id(self) -> pulumi.Output[str]:
        """The identity's resource id (what a Container App's identity map and secret references name)."""
        return self.identity.id

    @property
    def client_id(self) -> pulumi.Output[str]:
        """The client id DefaultAzureCredential selects the identity by (AZURE_CLIENT_ID)."""
        return self.identity.client_id


def workload_identity(name: str, physical: str, group: pulumi.Input[str], location: str, tags: dict[str, str],
                      opts: pulumi.ResourceOptions) -> Workload:
    """A user-assigned managed identity for one workload."""
    identity = managedidentity.UserAssignedIdentity(name, resource_name_=physical, resource_group_name=group,
                                                    location=location, tags=tags, opts=opts)
    return Workload(name, identity)


def grant(workload: Workload, role: str, scope: pulumi.Input[str], scope_key: str, subscription: pulumi.Input[str],
          opts: pulumi.ResourceOptions, *, definition: pulumi.Input[str] | None = None) -> authorization.RoleAssignment:
    """Assign `role` (a built-in role's key, or a custom `definition` id) to the workload on `scope`."""
    role_id = definition if definition is not None else pulumi.Output.from_input(subscription).apply(
        lambda sub: role_definition_id(sub, role))
    assignment = authorization.RoleAssignment(
        f"{workload.name}-{role}-{scope_key}", role_assignment_name=stable_guid(workload.name, role, scope_key),
        principal_id=workload.identity.principal_id, principal_type="ServicePrincipal",
        role_definition_id=role_id, scope=scope, opts=opts)
    workload.grants.append(assignment)
    return assignment
