"""Plausible computed outputs for mocked resources and invokes, so an offline plan is filled in.

The mock runtime returns only what `new_resource` gives back; anything else a resource computes
(an ARN, an endpoint, a generated password) would come back as None and silently empty every input
that depends on it. Each table maps a type token (or a package prefix) to the computed values.
Inputs arrive camelCase, as on the wire.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import yaml
from pulumi.runtime import mocks as pulumi_mocks

from infra.spec import PlatformSpec

ACCOUNT = "123456789012"
Computed = Callable[[str, dict[str, Any], PlatformSpec], dict[str, Any]]


def _fake_hex(name: str, length: int = 16) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:length]


def _aws_arn(service: str, kind: str) -> Computed:
    def computed(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
        region = spec.region or "us-east-1"
        resource = inputs.get("name") or inputs.get("bucket") or name
        return {"arn": f"arn:aws:{service}:{region}:{ACCOUNT}:{kind}{resource}"}
    return computed


def _random_password(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
    return {"result": f"mock-{_fake_hex(name, int(inputs.get('length', 16)))}"}


def _k8s_metadata(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
    metadata = dict(inputs.get("metadata") or {})
    metadata.setdefault("name", name)
    return {"metadata": metadata}


def _physical(name: str, inputs: dict[str, Any], key: str = "name") -> str:
    """The physical name AWS would have: the given one, else Pulumi's auto-name (resource name + suffix)."""
    return str(inputs.get(key) or f"{name}-{_fake_hex(name, 7)}")


def _aws_resource(service: str, path: str, key: str = "name", **extra: str) -> Computed:
    """ARN `arn:aws:<service>:<region>:<account>:<path with {name}>` plus `extra` values ({name}, {region},
    {account}, {hex} substituted); `key` is the input holding the physical name."""
    def computed(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
        values = {"name": _physical(name, inputs, key), "region": spec.region or "us-east-1", "account": ACCOUNT,
                  "hex": _fake_hex(name, 8)}
        region = "" if service in ("s3", "iam") else values["region"]
        account = "" if service == "s3" else ACCOUNT
        out = {"arn": f"arn:aws:{service}:{region}:{account}:{path.format(**values)}"}
        out.update({k: v.format(**values) for k, v in extra.items()})
        if key not in inputs:
            out[key] = values["name"]
        return out
    return computed


def _pushed_image(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
    """A built and pushed image: the digest of its manifest (a function of its tags, so stable per build) and
    the `<tag>@<digest>` reference docker-build gives."""
    tags = [str(t) for t in inputs.get("tags") or []]
    digest = "sha256:" + hashlib.sha256("\n".join([name, *tags]).encode()).hexdigest()
    return {"digest": digest, "ref": f"{tags[0]}@{digest}" if tags else "", "contextHash": _fake_hex(name, 64)}


SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
TENANT = "99999999-8888-7777-6666-555555555555"


def _fake_guid(name: str) -> str:
    text = _fake_hex(name, 32)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


#: Azure: the input holding each type's physical name (`<kind>Name` in, `name` out), by type token.
AZURE_NAME_INPUTS: dict[str, str] = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:network:PrivateEndpoint": "privateEndpointName",
    "azure-native:network:PrivateDnsZoneGroup": "privateDnsZoneGroupName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
    "azure-native:privatedns:PrivateRecordSet": "relativeRecordSetName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:keyvault:Secret": "secretName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:applicationinsights:Component": "resourceName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
    "azure-native:authorization:RoleDefinition": "roleDefinitionId",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobServiceProperties": "blobServicesName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:ManagementPolicy": "managementPolicyName",
    "azure-native:dbforpostgresql:Server": "serverName",
    "azure-native:dbforpostgresql:Database": "databaseName",
    "azure-native:app:ManagedEnvironment": "environmentName",
    "azure-native:app:ContainerApp": "containerAppName",
    "azure-native:app:Job": "jobName",
    "azure-native:monitor:ActionGroup": "actionGroupName",
    "azure-native:monitor:MetricAlert": "ruleName",
    "azure-native:monitor:DiagnosticSetting": "name",
    "azure-native:containerservice:ManagedCluster": "resourceName",
    "azure-native:containerservice:AgentPool": "agentPoolName",
    "azure-native:managedidentity:FederatedIdentityCredential": "federatedIdentityCredentialResourceName",
}


def _azure_resource(name: str, inputs: dict[str, Any], spec: PlatformSpec, typ: str) -> dict[str, Any]:
    """`name` from the type's `<kind>Name` input, an ARM-shaped id, and user-assigned identities as a map."""
    module, kind = typ.split(":")[1:]
    physical = str(inputs.get(AZURE_NAME_INPUTS.get(typ, "name")) or f"{name}{_fake_hex(name, 6)}")
    group = inputs.get("resourceGroupName") or physical
    out: dict[str, Any] = {"name": physical, "__id": (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.{module}/{kind}s/{physical}")}
    identities = (inputs.get("identity") or {}).get("userAssignedIdentities")
    if isinstance(identities, list):  # goes in as a list of ids, comes back as a map (the SDK insists)
        out["identity"] = {**inputs["identity"], "userAssignedIdentities": {
            i: {"clientId": _fake_guid(f"client/{i}"), "principalId": _fake_guid(f"principal/{i}")}
            for i in identities}}
    return out


def _with(path: tuple[str, ...], value: str) -> Callable[[str, dict[str, Any], PlatformSpec], dict[str, Any]]:
    """A computed value nested under `path` of the echoed inputs ({name}, {region}, {hex} substituted)."""
    def computed(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
        physical = _physical(name, inputs, "__none__")
        for key in AZURE_NAME_INPUTS.values():
            if key != "resourceGroupName" and inputs.get(key):
                physical = str(inputs[key])
                break
        text = value.format(name=physical, region=spec.region or "westeurope", hex=_fake_hex(name, 8))
        top = dict(inputs.get(path[0]) or {}) if len(path) > 1 else {}
        node = top
        for step in path[1:-1]:
            node[step] = dict(node.get(step) or {})
            node = node[step]
        if len(path) == 1:
            return {path[0]: text}
        node[path[-1]] = text
        return {path[0]: top}
    return computed


def _merged(*parts: Computed) -> Computed:
    def computed(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in parts:
            out.update(part(name, inputs, spec))
        return out
    return computed


#: Computed outputs by exact type token. Targets add their resource types here.
BY_TYPE: dict[str, Computed] = {
    "random:index/randomPassword:RandomPassword": _random_password,
    "docker-build:index:Image": _pushed_image,
    # AWS target (infra/targets/aws): names, ARNs, URLs and addresses the provider computes.
    "aws:s3/bucket:Bucket": _aws_resource("s3", "{name}", key="bucket",
                                          bucketRegionalDomainName="{name}.s3.{region}.amazonaws.com"),
    "aws:kms/key:Key": _aws_resource("kms", "key/{hex}-mock", keyId="{hex}-mock"),
    "aws:ecr/repository:Repository": _aws_resource("ecr", "repository/{name}", registryId="{account}",
                                                   repositoryUrl="{account}.dkr.ecr.{region}.amazonaws.com/{name}"),
    "aws:iam/role:Role": _aws_resource("iam", "role/{name}"),
    "aws:iam/policy:Policy": _aws_resource("iam", "policy/{name}"),
    "aws:rds/instance:Instance": _aws_resource("rds", "db:{name}", key="identifier",
                                               address="{name}.{hex}.{region}.rds.amazonaws.com",
                                               endpoint="{name}.{hex}.{region}.rds.amazonaws.com:5432"),
    "aws:rds/subnetGroup:SubnetGroup": _aws_resource("rds", "subgrp:{name}"),
    "aws:lb/loadBalancer:LoadBalancer": _aws_resource("elasticloadbalancing", "loadbalancer/app/{name}/{hex}",
                                                      dnsName="internal-{name}-{hex}.{region}.elb.amazonaws.com",
                                                      arnSuffix="app/{name}/{hex}"),
    "aws:lb/targetGroup:TargetGroup": _aws_resource("elasticloadbalancing", "targetgroup/{name}/{hex}",
                                                    arnSuffix="targetgroup/{name}/{hex}"),
    "aws:ecs/cluster:Cluster": _aws_resource("ecs", "cluster/{name}"),
    "aws:ecs/taskDefinition:TaskDefinition": _aws_resource("ecs", "task-definition/{name}:1", key="family"),
    "aws:sagemaker/pipeline:Pipeline": _aws_resource("sagemaker", "pipeline/{name}", key="pipelineName"),
    "aws:sagemaker/model:Model": _aws_resource("sagemaker", "model/{name}"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _aws_resource("sagemaker", "endpoint-config/{name}"),
    "aws:sagemaker/endpoint:Endpoint": _aws_resource("sagemaker", "endpoint/{name}"),
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": _aws_resource(
        "sagemaker", "mlflow-tracking-server/{name}", key="trackingServerName",
        trackingServerUrl="https://t-{hex}.{region}.experiments.sagemaker.aws"),
    "aws:sns/topic:Topic": _aws_resource("sns", "{name}"),
    "aws:secretsmanager/secret:Secret": _aws_resource("secretsmanager", "secret:{name}-Ab12Cd"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _aws_resource("cloudwatch", "alarm:{name}"),
    "aws:cloudwatch/logGroup:LogGroup": _aws_resource("logs", "log-group:{name}"),
    "aws:cloudwatch/eventRule:EventRule": _aws_resource("events", "rule/{name}"),
    "aws:eks/cluster:Cluster": _merged(
        _aws_resource("eks", "cluster/{name}", endpoint="https://{hex}0A1B2C3D4E5F.gr7.{region}.eks.amazonaws.com"),
        _with(("vpcConfig", "clusterSecurityGroupId"), "sg-{hex}0eks"),
        lambda name, inputs, spec: {"certificateAuthority": {"data": GKE_CA_CERTIFICATE}}),
    "aws:ec2/launchTemplate:LaunchTemplate": lambda name, inputs, spec: {"latestVersion": 1},
    "aws:ec2/vpcEndpoint:VpcEndpoint": _aws_resource("ec2", "vpc-endpoint/vpce-{hex}", prefixListId="pl-{hex}"),
    # Azure target (infra/targets/azure): addresses, identities and endpoints Azure computes.
    "azure-native:managedidentity:UserAssignedIdentity": lambda name, inputs, spec: {
        "clientId": _fake_guid(f"client/{name}"), "principalId": _fake_guid(f"principal/{name}"),
        "tenantId": TENANT},
    "azure-native:containerregistry:Registry": _with(("loginServer",), "{name}.azurecr.io"),
    "azure-native:keyvault:Vault": _with(("properties", "vaultUri"), "https://{name}.vault.azure.net/"),
    "azure-native:dbforpostgresql:Server": _with(("fullyQualifiedDomainName",),
                                                 "{name}.postgres.database.azure.com"),
    "azure-native:app:ManagedEnvironment": _merged(_with(("defaultDomain",), "{hex}.{region}.azurecontainerapps.io"),
                                                   _with(("staticIp",), "10.52.0.250")),
    "azure-native:app:ContainerApp": _with(("configuration", "ingress", "fqdn"),
                                           "{name}.{hex}.westeurope.azurecontainerapps.io"),
    "azure-native:storage:StorageAccount": _with(("primaryEndpoints", "blob"), "https://{name}.blob.core.windows.net/"),
    "azure-native:containerservice:ManagedCluster": _merged(
        _with(("fqdn",), "{name}-{hex}.hcp.{region}.azmk8s.io"),
        _with(("oidcIssuerProfile", "issuerURL"), f"https://{{region}}.oic.prod-aks.azure.com/{TENANT}/{{hex}}/")),
}


def _aks_user_credentials(args: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
    """An AKS cluster's user kubeconfig as AKS lists it for an Entra ID cluster (base64 YAML; kubelogin, no
    credential inside)."""
    name, group = str(args.get("resourceName", "")), str(args.get("resourceGroupName", ""))
    user = f"clusterUser_{group}_{name}"
    config = {"apiVersion": "v1", "kind": "Config", "current-context": name,
              "clusters": [{"name": name, "cluster": {"certificate-authority-data": AKS_CA_CERTIFICATE,
                                                      "server": f"https://{name}-dns.hcp.{spec.region}.azmk8s.io:443"}}],
              "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
              "users": [{"name": user, "user": {"exec": {
                  "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin",
                  "args": ["get-token", "--login", "devicecode", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"],
                  "interactiveMode": "IfAvailable"}}}]}
    encoded = base64.b64encode(yaml.safe_dump(config).encode()).decode()
    return {"kubeconfigs": [{"name": "clusterUser", "value": encoded}]}


#: An AKS cluster's CA certificate (base64 PEM), as its kubeconfig carries it.
AKS_CA_CERTIFICATE = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="

def _gcp(**values: str) -> Computed:
    """GCP computed outputs: `values` with {name} (the given or auto-name), {project}, {region}, {number},
    {hex} and any input (`{accountId}`, `{secretId}`) substituted; an `id` becomes the resource's id."""
    def computed(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
        gcp = spec.gcp_settings
        fields = {k: v for k, v in inputs.items() if isinstance(v, str)}
        fields.update(name=_physical(name, inputs).lower(), project=gcp.project or "plan-project",
                      region=spec.region or "us-central1", number=GCP_PROJECT_NUMBER, hex=_fake_hex(name, 8))
        out = {k: v.format(**fields) for k, v in values.items()}
        if "name" not in inputs:
            out.setdefault("name", fields["name"])
        return out
    return computed


def _service_identity(name: str, inputs: dict[str, Any], spec: PlatformSpec) -> dict[str, Any]:
    from infra.targets.gcp.services import service_agent

    email = service_agent(GCP_PROJECT_NUMBER, inputs["service"])
    return {"email": email, "member": f"serviceAccount:{email}"}


GCP_PROJECT_NUMBER = "123456789012"
#: A GKE cluster's CA certificate (base64 PEM), as the kubeconfig carries it.
GKE_CA_CERTIFICATE = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
BY_TYPE.update({
    # GCP target (infra/targets/gcp): ids (full resource names), URLs, addresses and e-mails GCP computes.
    "gcp:compute/network:Network": _gcp(id="projects/{project}/global/networks/{name}",
                                        selfLink="https://www.googleapis.com/compute/v1/projects/{project}/global/networks/{name}"),
    "gcp:compute/subnetwork:Subnetwork": _gcp(id="projects/{project}/regions/{region}/subnetworks/{name}"),
    "gcp:kms/keyRing:KeyRing": _gcp(id="projects/{project}/locations/{region}/keyRings/{name}"),
    "gcp:kms/cryptoKey:CryptoKey": _gcp(id="{keyRing}/cryptoKeys/{name}"),
    "gcp:storage/bucket:Bucket": _gcp(url="gs://{name}", selfLink="https://www.googleapis.com/storage/v1/b/{name}"),
    "gcp:sql/databaseInstance:DatabaseInstance": _gcp(privateIpAddress="10.100.0.3",
                                                     connectionName="{project}:{region}:{name}"),
    "gcp:serviceaccount/account:Account": _gcp(email="{accountId}@{project}.iam.gserviceaccount.com",
                                               member="serviceAccount:{accountId}@{project}.iam.gserviceaccount.com",
                                               id="projects/{project}/serviceAccounts/{accountId}@{project}.iam.gserviceaccount.com"),
    "gcp:projects/serviceIdentity:ServiceIdentity": _service_identity,
    "gcp:secretmanager/secret:Secret": _gcp(id="projects/{project}/secrets/{secretId}",
                                            name="projects/{number}/secrets/{secretId}"),
    "gcp:pubsub/topic:Topic": _gcp(id="projects/{project}/topics/{name}"),
    "gcp:monitoring/notificationChannel:NotificationChannel": _gcp(
        name="projects/{project}/notificationChannels/{hex}"),
    "gcp:monitoring/alertPolicy:AlertPolicy": _gcp(name="projects/{project}/alertPolicies/{hex}"),
    "gcp:monitoring/dashboard:Dashboard": _gcp(id="projects/{number}/dashboards/{hex}"),
    "gcp:cloudrunv2/service:Service": _gcp(uri="https://{name}-{hex}-ew.a.run.app"),
    "gcp:artifactregistry/repository:Repository": _gcp(
        id="projects/{project}/locations/{region}/repositories/{repositoryId}"),
    "gcp:container/cluster:Cluster": _merged(
        _gcp(id="projects/{project}/locations/{region}/clusters/{name}", endpoint="34.118.0.10"),
        lambda name, inputs, spec: {"masterAuth": {"clusterCaCertificate": GKE_CA_CERTIFICATE}}),
})

#: Computed outputs by package prefix, merged under the exact-type entries.
BY_PACKAGE: dict[str, Computed] = {
    "aws:": _aws_arn("mock", ""),
    "kubernetes:": _k8s_metadata,
}
#: Computed outputs by package prefix that need the type token too.
BY_PACKAGE_TYPED: dict[str, Callable[[str, dict[str, Any], PlatformSpec, str], dict[str, Any]]] = {
    "azure-native:": _azure_resource,
}

#: Invoke results by function token (wire names: camelCase).
INVOKES: dict[str, Callable[[dict[str, Any], PlatformSpec], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda args, spec: {
        "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/plan", "userId": "PLAN"},
    "aws:index/getRegion:getRegion": lambda args, spec: {"name": spec.region or "us-east-1",
                                                         "region": spec.region or "us-east-1"},
    "aws:index/getPartition:getPartition": lambda args, spec: {"partition": "aws", "dnsSuffix": "amazonaws.com"},
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda args, spec: {
        "names": [f"{spec.region or 'us-east-1'}{z}" for z in "abc"],
        "zoneIds": [f"use1-az{i}" for i in range(1, 4)]},
    # AWS target: an existing VPC (networking.existing_network) and secrets referenced by ARN.
    "aws:ec2/getVpc:getVpc": lambda args, spec: {"id": args.get("id", "vpc-mock"), "cidrBlock": "10.0.0.0/16"},
    "aws:ec2/getSubnets:getSubnets": lambda args, spec: {
        "id": spec.region or "us-east-1", "ids": ["subnet-mock-a", "subnet-mock-b"]},
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": lambda args, spec: {
        "id": spec.region or "us-east-1", "userName": "AWS", "password": "mock-ecr-token",
        "authorizationToken": "QVdTOm1vY2stZWNyLXRva2Vu", "expiresAt": "2030-01-01T00:00:00Z",
        "proxyEndpoint": f"https://{args.get('registryId', ACCOUNT)}.dkr.ecr.{spec.region or 'us-east-1'}"
                         ".amazonaws.com"},
    # GCP target: the project's number, the deployer's access token (image push), and webhook URLs kept in
    # Secret Manager.
    "gcp:organizations/getClientConfig:getClientConfig": lambda args, spec: {
        "id": "mock", "accessToken": "mock-gcp-access-token", "project": spec.gcp_settings.project or "",
        "region": spec.region or "", "zone": "", "defaultLabels": {}},
    "gcp:organizations/getProject:getProject": lambda args, spec: {
        "number": GCP_PROJECT_NUMBER, "projectId": args.get("projectId", ""), "id": args.get("projectId", "")},
    "gcp:secretmanager/getSecretVersion:getSecretVersion": lambda args, spec: {
        "secret": str(args.get("secret", "")), "secretData": "https://hooks.example.com/mock", "version": "1",
        "name": f"{args.get('secret', '')}/versions/1"},
    "aws:secretsmanager/getSecretVersion:getSecretVersion": lambda args, spec: {
        "arn": str(args.get("secretId", "")), "secretId": str(args.get("secretId", "")),
        "secretString": "https://hooks.example.com/mock", "versionId": "mock"},
    "azure-native:authorization:getClientConfig": lambda args, spec: {
        "clientId": _fake_guid("deployer"), "objectId": _fake_guid("deployer-object"),
        "subscriptionId": SUBSCRIPTION, "tenantId": TENANT},
    "azure-native:containerservice:listManagedClusterUserCredentials": _aks_user_credentials,
}


class PlanMocks(pulumi_mocks.Mocks):
    """Mocks that echo inputs and add each resource type's computed outputs."""

    def __init__(self, spec: PlatformSpec):
        self.spec = spec

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """Echo the inputs plus plausible computed values; the id is stable per name (or the type's own form,
        such as a GCP resource's full name)."""
        state = dict(args.inputs)
        for prefix, computed in BY_PACKAGE.items():
            if args.typ.startswith(prefix):
                state.update({k: v for k, v in computed(args.name, args.inputs, self.spec).items() if k not in state})
        for prefix, typed in BY_PACKAGE_TYPED.items():
            if args.typ.startswith(prefix):
                state.update(typed(args.name, args.inputs, self.spec, args.typ))
        computed = BY_TYPE[args.typ](args.name, args.inputs, self.spec) if args.typ in BY_TYPE else {}
        resource_id = computed.pop("id", None) or state.pop("__id", None)
        state.update(computed)
        resource_id = resource_id or f"{args.name}-{_fake_hex(args.typ + args.name, 8)}"
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Answer known invokes; an unknown one is an error, so a plan never runs on silent empties."""
        handler = INVOKES.get(args.token)
        if handler is None:
            raise NotImplementedError(f"the offline plan has no mock for invoke {args.token!r}; add it to INVOKES")
        return handler(dict(args.args), self.spec), []
