"""Policies over the offline plan's resource graph: pure functions, no Pulumi runtime.

A policy reads the captured graph (resource dicts shaped as `plan --json` prints them, the stack outputs,
and a small `Context` taken from the spec) and returns findings. Resource types are recognised through
small tables (type token -> how to check it), so a target supports a new resource type with one line in
a table, not a branch. The same functions back `shipyard plan` and the Pulumi policy pack (policy-pack/).

Markers: the plan writes a Pulumi secret as '[secret]' and a value not known before deployment as
'[unknown]' (see `infra.plan_capture`); policies treat both as "not plaintext".
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SECRET = "[secret]"
UNKNOWN = "[unknown]"
PLATFORM = "shipyard:index:Platform"
SERVING_ENDPOINT = "shipyard:index:ServingEndpoint"
MONITORING = "shipyard:index:Monitoring"
MODEL_REGISTRY = "shipyard:index:ModelRegistry"

Resource = Mapping[str, Any]
Level = Literal["mandatory", "advisory", "disabled"]


@dataclass(frozen=True)
class Context:
    """What policies need to know from the spec: the environment and what may be public."""

    environment: str = "dev"
    private_network: bool = True
    models: tuple[str, ...] = ()
    public_models: frozenset[str] = frozenset()

    @classmethod
    def from_spec(cls, spec: Any) -> Context:
        """The context of a validated `PlatformSpec`."""
        return cls(
            environment=spec.environment,
            private_network=spec.networking.private,
            models=tuple(m.name for m in spec.models),
            public_models=frozenset(m.name for m in spec.models if m.serving.public),
        )


@dataclass(frozen=True)
class Finding:
    """One problem a policy found: which resource, and what is wrong (never the secret value itself)."""

    urn: str
    message: str


@dataclass(frozen=True)
class Violation:
    """A finding of a named policy, with whether it blocks the plan in this environment."""

    policy: str
    urn: str
    message: str
    mandatory: bool

    def to_json(self) -> dict[str, Any]:
        """The violation as `plan --json` prints it."""
        return {"policy": self.policy, "urn": self.urn, "message": self.message, "mandatory": self.mandatory}


class Graph:
    """The captured resources with the lookups policies share: by URN, ancestors, owning component."""

    def __init__(self, resources: Iterable[Resource], outputs: Mapping[str, Any] | None = None,
                 context: Context | None = None, stack_urn: str = ""):
        self.resources = list(resources)
        self.outputs = dict(outputs or {})
        self.context = context or Context()
        self.by_urn = {r["urn"]: r for r in self.resources}
        self.stack_urn = stack_urn or next(
            (r.get("parent", "") for r in self.resources if r["type"] == PLATFORM), "")

    def of_type(self, types: Iterable[str]) -> Iterator[Resource]:
        """The resources whose type token is one of `types`, in declaration order."""
        wanted = set(types)
        return (r for r in self.resources if r["type"] in wanted)

    def ancestors(self, resource: Resource) -> Iterator[Resource]:
        """The resource's parent, grandparent, ... up to the first one outside the graph."""
        seen: set[str] = set()
        parent = resource.get("parent") or ""
        while parent in self.by_urn and parent not in seen:
            seen.add(parent)
            node = self.by_urn[parent]
            yield node
            parent = node.get("parent") or ""

    def owner(self, resource: Resource, tokens: Iterable[str]) -> Resource | None:
        """The nearest ancestor whose type is one of `tokens`."""
        wanted = set(tokens)
        return next((a for a in self.ancestors(resource) if a["type"] in wanted), None)

    def model_of(self, resource: Resource) -> str | None:
        """The model whose ServingEndpoint or Monitoring component owns `resource`, if any.

        Targets name those components with the model's name as a dash-separated part of the name
        ('<prefix>-<model>-serving', '<prefix>-<model>'); the longest model name that fits wins.
        """
        component = self.owner(resource, (SERVING_ENDPOINT, MONITORING))
        return None if component is None else model_named(component["name"], self.context.models)

    def referencing(self, resource: Resource, types: Iterable[str]) -> list[Resource]:
        """Resources of `types` that point at `resource`: they depend on it, or name it in an input."""
        names = {v for v in (resource.get("name"), (resource.get("inputs") or {}).get("bucket")) if v}
        return [
            r for r in self.of_type(types)
            if resource["urn"] in (r.get("dependencies") or ())
            or any(v in names for v in (r.get("inputs") or {}).values() if isinstance(v, str))
        ]


def model_named(name: str, models: Iterable[str]) -> str | None:
    """The model whose name is a run of dash-separated parts of `name` ('shipyard-dev-churn-serving' -> 'churn')."""
    padded = f"-{name}-"
    matches = [m for m in models if f"-{m}-" in padded]
    return max(matches, key=len) if matches else None


def dig(node: Any, *path: str | int) -> Any:
    """`node[path[0]][path[1]]...`, or None as soon as a step is missing."""
    for step in path:
        if isinstance(node, Mapping) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and -len(node) <= step < len(node):
            node = node[step]
        else:
            return None
    return node


def is_marker(value: Any) -> bool:
    """Whether a value is the plan's secret or unknown marker (never plaintext)."""
    return value in (SECRET, UNKNOWN)


def _json_document(value: str) -> Any:
    """A string input that holds JSON (ECS container definitions, a run config), parsed; else None."""
    text = value.lstrip()
    if text[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


# --- (a) no plaintext secrets ---------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
#: A key holding one of these words names a secret...
SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "token", "credential", "credentials"})
#: ... and so does a key with one of these adjacent word pairs.
SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"),
                          ("auth", "key"), ("signing", "key")})
#: A key ending in one of these words refers to a secret (its name, ARN, path) or describes how it is
#: handled (`skipCredentialsValidation`, `tokenExpirationSeconds`); it does not hold one.
REFERENCE_WORDS = frozenset({"name", "names", "ref", "arn", "id", "ids", "path", "file", "url", "uri", "endpoint",
                             "version", "type", "policy", "selector", "mount", "length", "enabled", "stage",
                             "provider", "store", "rotation", "validation", "expiration", "seconds", "days",
                             "ttl", "count", "mode", "format"})
#: Providers pass booleans as strings (Azure as 'Enabled'/'Disabled'): a flag is never a secret.
_FLAGS = frozenset({"true", "false", "Enabled", "Disabled"})
#: `scheme://user:password@` with a password that is neither a marker nor an environment reference.
_CREDENTIALS_IN_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@")
_ENV_REFERENCE = re.compile(r"^\$(\(\w+\)|\{\w+\}|\w+)$")
#: A Secret Manager resource name (`projects/<p>/secrets/<id>[/versions/<v>]`) refers to a secret; it is not one.
_SECRET_MANAGER_NAME = re.compile(r"^projects/[^/\s]+/secrets/[^/\s]+(/versions/[^/\s]+)?$")
#: Fields whose every value must be a secret, by resource type (checked instead of the key rule).
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Secret": ("data", "stringData"),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretString", "secretBinary"),
    "gcp:secretmanager/secretVersion:SecretVersion": ("secretData",),
}


def key_words(key: str) -> list[str]:
    """'MLFLOW_TRACKING_PASSWORD' -> ['mlflow', 'tracking', 'password']; 'secretKeyRef' -> ['secret', 'key', 'ref']."""
    return [w.lower() for w in _WORD.findall(key)]


@functools.lru_cache(maxsize=4096)
def looks_secret(key: str) -> bool:
    """Whether a key (a property, a map key or an environment variable name) names a secret value."""
    words = key_words(key)
    if not words or words[-1] in REFERENCE_WORDS:
        return False
    return bool(SECRET_WORDS.intersection(words)) or any(pair in SECRET_PAIRS for pair in itertools.pairwise(words))


def _plaintext(value: Any) -> bool:
    return (isinstance(value, str) and value not in _FLAGS and value != "" and not is_marker(value)
            and not _ENV_REFERENCE.match(value) and not _SECRET_MANAGER_NAME.match(value))


def _check_leaf(key: str, value: Any, trail: list[str], found: list[str]) -> None:
    if not isinstance(value, str) or not value:
        return
    if looks_secret(key) and _plaintext(value):
        found.append(f"{''.join(trail).lstrip('.')}: a plaintext value under a secret-looking key")
    elif "://" in value and "@" in value:
        match = _CREDENTIALS_IN_URL.search(value)
        if match and _plaintext(match.group(1)):
            found.append(f"{''.join(trail).lstrip('.')}: a URL with a plaintext password")


def _visit(node: Any, key: str, trail: list[str], found: list[str]) -> None:
    """Check every leaf under `node`; `trail` holds the path segments to it ('.key', '[i]', '(NAME)')."""
    if isinstance(node, str):
        document = _json_document(node)
        if document is None:
            _check_leaf(key, node, trail, found)
        else:
            _visit(document, key, trail, found)
    elif isinstance(node, Mapping):
        pair = isinstance(node.get("name"), str) and isinstance(node.get("value"), str)
        if pair:  # an environment list entry: `name` is the key of `value`
            trail.append(f"({node['name']})")
            _visit(node["value"], node["name"], trail, found)
            trail.pop()
        for name, value in node.items():
            if not (pair and name in ("name", "value")):
                trail.append(f".{name}")
                _visit(value, str(name), trail, found)
                trail.pop()
    elif isinstance(node, list):
        for i, value in enumerate(node):
            trail.append(f"[{i}]")
            _visit(value, key, trail, found)
            trail.pop()


def plaintext_secrets(node: Any) -> list[str]:
    """Paths in `node` holding a plaintext secret: under a secret-looking key, or credentials inside a URL.

    A `{name, value}` pair (an environment list entry) counts as `name: value`; strings holding JSON
    documents are walked too, so a secret inside an ECS container definition is seen.
    """
    found: list[str] = []
    _visit(node, "", [], found)
    return found


def _secret_field_problems(resource: Resource, fields: tuple[str, ...]) -> list[str]:
    """The entries of a secret store's payload fields that are not Pulumi secrets."""
    inputs = resource.get("inputs") or {}
    problems = []
    for name in fields:
        value = inputs.get(name)
        entries = value.items() if isinstance(value, Mapping) else [(None, value)]
        problems += [f"inputs.{name}" + (f".{key}" if key else "") + " is not a Pulumi secret"
                     for key, item in entries if item is not None and not is_marker(item)]
    return problems


def check_no_plaintext_secrets(graph: Graph) -> list[Finding]:
    """No input or output holds a secret in plaintext; secret-store payloads are Pulumi secrets whole."""
    findings = []
    for resource in graph.resources:
        fields = SECRET_FIELDS.get(resource["type"], ())
        inputs = {k: v for k, v in (resource.get("inputs") or {}).items() if k not in fields}
        problems = _secret_field_problems(resource, fields) + [f"inputs.{p}" for p in plaintext_secrets(inputs)]
        findings += [Finding(resource["urn"], f"{p}; make it a Pulumi secret") for p in problems]
    findings += [Finding(graph.stack_urn, f"outputs.{p}; export it as a Pulumi secret")
                 for p in plaintext_secrets(graph.outputs)]
    return findings


# --- (b) storage encrypted ------------------------------------------------------------------------

Check = Callable[[Graph, Resource], str | None]
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_ENCRYPTION = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                 "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
S3_PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
_PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _when(prop: tuple[str, ...], bad: Callable[[Any], bool], problem: str) -> Check:
    def check(graph: Graph, resource: Resource) -> str | None:
        return problem if bad(dig(resource.get("inputs"), *prop)) else None
    return check


def _requires_true(prop: str, problem: str) -> Check:
    def check(graph: Graph, resource: Resource) -> str | None:
        return None if dig(resource.get("inputs"), prop) is True else problem
    return check


def _requires_any(props: tuple[str, ...], problem: str) -> Check:
    def check(graph: Graph, resource: Resource) -> str | None:
        inputs = resource.get("inputs") or {}
        return None if any(inputs.get(p) not in (None, "", False) for p in props) else problem
    return check


def _bucket_encryption(graph: Graph, resource: Resource) -> str | None:
    if dig(resource.get("inputs"), "serverSideEncryptionConfiguration") or graph.referencing(resource, S3_ENCRYPTION):
        return None
    return "S3 bucket without server-side encryption (add a BucketServerSideEncryptionConfiguration)"


#: Storage that must be encrypted at rest, by type. Kubernetes volumes are absent on purpose: their
#: encryption belongs to the StorageClass / CSI driver and the cluster's etcd, outside the program.
ENCRYPTION: dict[str, Check] = {
    **dict.fromkeys(S3_BUCKETS, _bucket_encryption),
    "aws:rds/instance:Instance": _requires_true("storageEncrypted", "RDS instance without storageEncrypted"),
    "aws:rds/cluster:Cluster": _requires_true("storageEncrypted", "RDS cluster without storageEncrypted"),
    "aws:ebs/volume:Volume": _requires_true("encrypted", "EBS volume not encrypted"),
    "aws:efs/fileSystem:FileSystem": _requires_true("encrypted", "EFS file system not encrypted"),
    "aws:sns/topic:Topic": _requires_any(("kmsMasterKeyId",), "SNS topic without a KMS key"),
    "aws:sqs/queue:Queue": _requires_any(("kmsMasterKeyId", "sqsManagedSseEnabled"), "SQS queue without encryption"),
    # GCP encrypts everything at rest; the platform's data is held to its own key (CMEK).
    "gcp:storage/bucket:Bucket": _when(("encryption", "defaultKmsKeyName"), lambda v: not v,
                                       "GCS bucket without the platform's KMS key (encryption.defaultKmsKeyName)"),
    "gcp:sql/databaseInstance:DatabaseInstance": _requires_any(("encryptionKeyName",),
                                                               "Cloud SQL instance without a KMS key"),
    "gcp:pubsub/topic:Topic": _requires_any(("kmsKeyName",), "Pub/Sub topic without a KMS key"),
    "gcp:secretmanager/secret:Secret": _when(
        ("replication", "userManaged", "replicas"),
        lambda replicas: not replicas or not all(dig(r, "customerManagedEncryption", "kmsKeyName") for r in replicas),
        "Secret Manager secret without a KMS key on every replica"),
    # Azure encrypts storage and PostgreSQL at rest always; a storage account must not turn blob encryption off.
    "azure-native:storage:StorageAccount": lambda g, r: (
        "storage account with blob encryption disabled"
        if dig(r.get("inputs"), "encryption", "services", "blob", "enabled") is False else None),
}


def _table_findings(graph: Graph, table: Mapping[str, Check], keep: Callable[[Resource], bool]) -> list[Finding]:
    findings = []
    for resource in graph.of_type(table):
        problem = table[resource["type"]](graph, resource)
        if problem and keep(resource):
            findings.append(Finding(resource["urn"], problem))
    return findings


def check_storage_encrypted(graph: Graph) -> list[Finding]:
    """Every store of data (object storage, databases, volumes, queues) is encrypted at rest."""
    return _table_findings(graph, ENCRYPTION, lambda r: True)


# --- (c) nothing publicly reachable unless the spec asks for it ------------------------------------

#: Service annotations that make a LoadBalancer Service internal on the usual clouds.
INTERNAL_LB_ANNOTATIONS: dict[str, str] = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}
WORLD = ("0.0.0.0/0", "::/0")


def _k8s_service(graph: Graph, resource: Resource) -> str | None:
    inputs = resource.get("inputs") or {}
    kind = dig(inputs, "spec", "type") or "ClusterIP"
    annotations = dig(inputs, "metadata", "annotations") or {}
    internal = any(annotations.get(k) == v for k, v in INTERNAL_LB_ANNOTATIONS.items())
    if kind == "NodePort" or (kind == "LoadBalancer" and not internal):
        return f"Service of type {kind} is reachable from outside the cluster"
    if dig(inputs, "spec", "externalIPs"):
        return "Service with externalIPs is reachable from outside the cluster"
    return None


def _open_to_world(cidrs: Any) -> bool:
    return isinstance(cidrs, list) and any(c in WORLD for c in cidrs)


def _security_group(graph: Graph, resource: Resource) -> str | None:
    for rule in dig(resource.get("inputs"), "ingress") or []:
        if _open_to_world(rule.get("cidrBlocks")) or _open_to_world(rule.get("ipv6CidrBlocks")):
            return "security group allows ingress from the whole internet"
    return None


def _security_group_rule(graph: Graph, resource: Resource) -> str | None:
    inputs = resource.get("inputs") or {}
    world = _open_to_world(inputs.get("cidrBlocks")) or _open_to_world(inputs.get("ipv6CidrBlocks"))
    return "ingress rule open to the whole internet" if inputs.get("type") == "ingress" and world else None


def _ingress_rule(graph: Graph, resource: Resource) -> str | None:
    inputs = resource.get("inputs") or {}
    world = inputs.get("cidrIpv4") in WORLD or inputs.get("cidrIpv6") in WORLD
    return "ingress rule open to the whole internet" if world else None


def _bucket_public_access(graph: Graph, resource: Resource) -> str | None:
    for block in graph.referencing(resource, S3_PUBLIC_ACCESS_BLOCK):
        if all(dig(block.get("inputs"), flag) is True for flag in _PUBLIC_ACCESS_FLAGS):
            return None
    return "S3 bucket without a BucketPublicAccessBlock setting all four flags"


#: GCP IAM bindings of one member; granting one to everyone makes the resource public.
GCP_IAM_MEMBERS = ("gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
                   "gcp:cloudrunv2/jobIamMember:JobIamMember", "gcp:pubsub/topicIAMMember:TopicIAMMember",
                   "gcp:secretmanager/secretIamMember:SecretIamMember")
GCP_EVERYONE = ("allUsers", "allAuthenticatedUsers")


def _gcp_public_member(graph: Graph, resource: Resource) -> str | None:
    member = dig(resource.get("inputs"), "member")
    return f"IAM binding grants {member}" if member in GCP_EVERYONE else None


def _gcp_firewall(graph: Graph, resource: Resource) -> str | None:
    inputs = resource.get("inputs") or {}
    if inputs.get("direction", "INGRESS") == "INGRESS" and inputs.get("allows") and \
            _open_to_world(inputs.get("sourceRanges")):
        return "firewall rule allows ingress from the whole internet"
    return None


AZURE_STORAGE = "azure-native:storage:StorageAccount"
AZURE_ENVIRONMENT = "azure-native:app:ManagedEnvironment"


def _azure_storage(graph: Graph, resource: Resource) -> str | None:
    inputs = resource.get("inputs") or {}
    if inputs.get("allowBlobPublicAccess") is not False:
        return "storage account allows anonymous blob access (set allowBlobPublicAccess false)"
    if inputs.get("allowSharedKeyAccess") is not False:
        return "storage account accepts shared keys (set allowSharedKeyAccess false; clients use Entra ID)"
    if inputs.get("publicNetworkAccess") != "Disabled" and dig(inputs, "networkRuleSet", "defaultAction") != "Deny":
        return "storage account reachable from every network (disable public access or default-deny its firewall)"
    return None


def _container_app_ingress(graph: Graph, resource: Resource) -> str | None:
    """External ingress is public unless the app's environment is internal to a VNet."""
    if dig(resource.get("inputs"), "configuration", "ingress", "external") is not True:
        return None
    dependencies = set(resource.get("dependencies") or ())
    environments = [e for e in graph.of_type((AZURE_ENVIRONMENT,)) if e["urn"] in dependencies]
    if environments and all(dig(e.get("inputs"), "vnetConfiguration", "internal") is True for e in environments):
        return None
    return "Container App with external ingress on an environment that is not internal to a VNet"


#: Resource types that can be reachable from the internet, and how to tell.
EXPOSURE: dict[str, Check] = {
    "kubernetes:core/v1:Service": _k8s_service,
    "kubernetes:networking.k8s.io/v1:Ingress": lambda g, r: "Ingress exposes it outside the cluster",
    "aws:ec2/securityGroup:SecurityGroup": _security_group,
    "aws:ec2/securityGroupRule:SecurityGroupRule": _security_group_rule,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _ingress_rule,
    **dict.fromkeys(("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"),
                    _when(("internal",), lambda v: v is not True, "internet-facing load balancer")),
    **dict.fromkeys(S3_BUCKETS, _bucket_public_access),
    **dict.fromkeys(("aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance"),
                    _when(("publiclyAccessible",), lambda v: v is True, "RDS instance publicly accessible")),
    "aws:sagemaker/domain:Domain": _when(("appNetworkAccessType",), lambda v: v != "VpcOnly",
                                         "SageMaker domain with public internet access (use VpcOnly)"),
    "aws:sagemaker/notebookInstance:NotebookInstance": _when(("directInternetAccess",), lambda v: v != "Disabled",
                                                             "SageMaker notebook with direct internet access"),
    "aws:eks/cluster:Cluster": _when(("vpcConfig", "endpointPublicAccess"), lambda v: v is not False,
                                     "EKS API endpoint publicly accessible"),
    "aws:lambda/functionUrl:FunctionUrl": _when(("authorizationType",), lambda v: v == "NONE",
                                                "Lambda function URL without authorization"),
    "gcp:storage/bucket:Bucket": _when(("publicAccessPrevention",), lambda v: v != "enforced",
                                       "GCS bucket without public access prevention enforced"),
    **dict.fromkeys(GCP_IAM_MEMBERS, _gcp_public_member),
    "gcp:sql/databaseInstance:DatabaseInstance": _when(("settings", "ipConfiguration", "ipv4Enabled"),
                                                       lambda v: v is not False, "Cloud SQL instance with a public IP"),
    "gcp:cloudrunv2/service:Service": _when(("ingress",), lambda v: v in (None, "INGRESS_TRAFFIC_ALL"),
                                            "Cloud Run service with ingress from the internet"),
    "gcp:compute/firewall:Firewall": _gcp_firewall,
    AZURE_STORAGE: _azure_storage,
    "azure-native:keyvault:Vault": lambda g, r: (
        None if dig(r.get("inputs"), "properties", "enablePurgeProtection") is True
        and dig(r.get("inputs"), "properties", "publicNetworkAccess") == "Disabled"
        else "Key Vault without purge protection or open to public networks"),
    "azure-native:dbforpostgresql:Server": _when(("network", "publicNetworkAccess"), lambda v: v != "Disabled",
                                                 "PostgreSQL flexible server with public network access"),
    "azure-native:app:ContainerApp": _container_app_ingress,
    AZURE_ENVIRONMENT: _when(("vnetConfiguration", "internal"), lambda v: v is not True,
                             "Container Apps environment with a public load balancer (set vnetConfiguration.internal)"),
}


def public_allowed(graph: Graph, resource: Resource) -> bool:
    """A serving resource may be public when its model says `serving.public`; anything else only when
    the spec turns `networking.private` off."""
    if graph.owner(resource, (SERVING_ENDPOINT,)) is not None:
        return graph.model_of(resource) in graph.context.public_models
    return not graph.context.private_network


def check_no_public_access(graph: Graph) -> list[Finding]:
    """Nothing is reachable from the internet unless the spec asks for it."""
    findings = _table_findings(graph, EXPOSURE, lambda r: not public_allowed(graph, r))
    return [Finding(f.urn, f"{f.message}, but the spec does not ask for it (serving.public / networking.private)")
            for f in findings]


# --- (d) stateful resources protected in prod -------------------------------------------------------

#: Resources holding state that is lost with them, by type -> scope: 'any' (wherever declared) or
#: 'registry' (only inside the ModelRegistry component: the registry database's credentials).
STATEFUL: dict[str, Literal["any", "registry"]] = {
    "kubernetes:apps/v1:StatefulSet": "any",
    "kubernetes:core/v1:PersistentVolumeClaim": "any",
    "kubernetes:core/v1:Secret": "registry",
    **dict.fromkeys(S3_BUCKETS, "any"),
    "aws:rds/instance:Instance": "any",
    "aws:rds/cluster:Cluster": "any",
    "aws:kms/key:Key": "any",
    "aws:efs/fileSystem:FileSystem": "any",
    "aws:secretsmanager/secret:Secret": "registry",
    # SageMaker's managed MLflow keeps the experiments, runs and registered models inside the server.
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": "any",
    "gcp:storage/bucket:Bucket": "any",
    "gcp:sql/databaseInstance:DatabaseInstance": "any",
    "gcp:sql/database:Database": "any",
    "gcp:kms/cryptoKey:CryptoKey": "any",
    "gcp:secretmanager/secret:Secret": "registry",
    AZURE_STORAGE: "any",
    "azure-native:storage:BlobContainer": "any",
    "azure-native:dbforpostgresql:Server": "any",
    "azure-native:dbforpostgresql:Database": "any",
    "azure-native:keyvault:Vault": "any",
    "azure-native:containerregistry:Registry": "any",
    "azure-native:keyvault:Secret": "registry",
}

#: Deletion protection a resource type has of its own, beside Pulumi's protect flag: the properties that must be
#: true where state is protected (prod).
DELETION_PROTECTION: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:rds/instance:Instance": (("deletionProtection",),),
    "gcp:sql/databaseInstance:DatabaseInstance": (("deletionProtection",), ("settings", "deletionProtectionEnabled")),
}


def check_state_protected(graph: Graph) -> list[Finding]:
    """Stateful resources (registry database, artifact storage, their keys) are protected or retained on delete,
    and those with a deletion protection of their own (DELETION_PROTECTION) have it on."""
    findings = []
    for resource in graph.of_type(STATEFUL):
        if STATEFUL[resource["type"]] == "registry" and graph.owner(resource, (MODEL_REGISTRY,)) is None:
            continue
        if not (resource.get("protect") or resource.get("retain_on_delete")):
            findings.append(Finding(resource["urn"], "stateful resource neither protected nor retained on delete"))
    for resource in graph.of_type(DELETION_PROTECTION):
        inputs = resource.get("inputs")
        off = [".".join(p) for p in DELETION_PROTECTION[resource["type"]] if dig(inputs, *p) is not True]
        if off:
            findings.append(Finding(resource["urn"], f"deletion protection off ({', '.join(off)})"))
    return findings


# --- (e) images pinned by digest, (f) resource limits -------------------------------------------------

#: Where the pod spec sits in each Kubernetes workload.
POD_SPEC: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}


def pod_containers(resource: Resource) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, container) of every container and init container of a Kubernetes workload."""
    pod = dig(resource.get("inputs"), *POD_SPEC[resource["type"]]) or {}
    return [(f"{kind}[{c.get('name', i)}]", c) for kind in ("initContainers", "containers")
            for i, c in enumerate(pod.get(kind) or []) if isinstance(c, Mapping)]


def _k8s_images(resource: Resource) -> list[tuple[str, Any]]:
    return [(label, c.get("image")) for label, c in pod_containers(resource)]


def _json_images(prop: str) -> Callable[[Resource], list[tuple[str, Any]]]:
    def images(resource: Resource) -> list[tuple[str, Any]]:
        value = dig(resource.get("inputs"), prop)
        document = _json_document(value) if isinstance(value, str) else value
        items = document if isinstance(document, list) else [document]
        return [(f"{prop}[{i}]", item.get("image")) for i, item in enumerate(items) if isinstance(item, Mapping)]
    return images


def _sagemaker_images(resource: Resource) -> list[tuple[str, Any]]:
    inputs = resource.get("inputs") or {}
    containers = [("primaryContainer", inputs.get("primaryContainer"))]
    containers += [(f"containers[{i}]", c) for i, c in enumerate(inputs.get("containers") or [])]
    return [(label, c.get("image")) for label, c in containers if isinstance(c, Mapping)]


#: Where each compute type names its container images.
IMAGES: dict[str, Callable[[Resource], list[tuple[str, Any]]]] = {
    **dict.fromkeys(POD_SPEC, _k8s_images),
    "aws:ecs/taskDefinition:TaskDefinition": _json_images("containerDefinitions"),
    "aws:batch/jobDefinition:JobDefinition": _json_images("containerProperties"),
    "aws:sagemaker/model:Model": _sagemaker_images,
    "aws:lambda/function:Function": lambda r: [("imageUri", dig(r.get("inputs"), "imageUri"))],
    **dict.fromkeys(("azure-native:app:ContainerApp", "azure-native:app:Job"), lambda r: [
        (f"template.containers[{c.get('name', i)}]", c.get("image"))
        for i, c in enumerate(dig(r.get("inputs"), "template", "containers") or []) if isinstance(c, Mapping)]),
}


def check_images_pinned(graph: Graph) -> list[Finding]:
    """Every container image is pinned by digest (`name@sha256:...`), so a deployment is reproducible."""
    findings = []
    for resource in graph.of_type(IMAGES):
        for label, image in IMAGES[resource["type"]](resource):
            if isinstance(image, str) and image and not is_marker(image) and "@sha256:" not in image:
                findings.append(Finding(resource["urn"], f"{label}: image {image!r} is not pinned by digest"))
    return findings


LIMITS = ("cpu", "memory")


def check_resource_limits(graph: Graph) -> list[Finding]:
    """Every container of every Kubernetes workload declares CPU and memory limits."""
    findings = []
    for resource in graph.of_type(POD_SPEC):
        for label, container in pod_containers(resource):
            limits = dig(container, "resources", "limits") or {}
            missing = [k for k in LIMITS if not limits.get(k)]
            if missing:
                findings.append(Finding(resource["urn"], f"{label}: no {' or '.join(missing)} limit"))
    return findings


# --- the registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A named policy, its check, and its enforcement per environment (`default` elsewhere)."""

    name: str
    description: str
    check: Callable[[Graph], list[Finding]]
    enforcement: Mapping[str, Level] = field(default_factory=dict)
    default: Level = "mandatory"

    def level(self, environment: str) -> Level:
        """How this policy is enforced in `environment`."""
        return self.enforcement.get(environment, self.default)


POLICIES: tuple[Policy, ...] = (
    Policy("no-plaintext-secrets", "No input or output holds a secret in plaintext.", check_no_plaintext_secrets),
    Policy("storage-encrypted", "Object storage, databases, volumes and queues are encrypted at rest.",
           check_storage_encrypted),
    Policy("no-public-access", "Nothing is reachable from the internet unless the spec asks for it.",
           check_no_public_access),
    Policy("state-protected", "Registry database and artifact storage are protected or retained on delete.",
           check_state_protected, {"prod": "mandatory", "staging": "advisory"}, default="disabled"),
    Policy("images-pinned", "Container images are pinned by digest.", check_images_pinned,
           {"prod": "advisory"}, default="disabled"),
    Policy("resource-limits", "Every Kubernetes container has CPU and memory limits.", check_resource_limits,
           default="advisory"),
)


def evaluate(graph: Graph, policies: Iterable[Policy] = POLICIES) -> list[Violation]:
    """Run every policy enabled in the graph's environment; mandatory violations first."""
    violations = []
    for policy in policies:
        level = policy.level(graph.context.environment)
        if level == "disabled":
            continue
        violations += [Violation(policy.name, f.urn, f.message, level == "mandatory") for f in policy.check(graph)]
    return sorted(violations, key=lambda v: (not v.mandatory, v.policy, v.urn, v.message))
