"""The EKS cluster profile (`aws.compute: kubernetes`): a private EKS cluster in the foundation's VPC, running the
Kubernetes target's workloads unchanged through the cluster's own provider.

- `EksCluster` (`shipyard:aws:Cluster`): the cluster (its API on private subnets, reachable from the VPC and
  `networking.allowed_cidrs`, public only when `networking.private` is false; Kubernetes Secrets encrypted with
  the platform key; control-plane logs in a KMS-encrypted group), its managed add-ons (the VPC CNI enforcing the
  workloads' NetworkPolicies, kube-proxy, CoreDNS, the Pod Identity agent, the EBS CSI driver with its own
  identity), the managed node groups of `eks_facts.node_group_plans` (IMDSv2 with one hop: pods never reach the
  nodes' credentials), the nodes' role (what EKS requires: joining, pulling from ECR, the CNI; nothing else),
  the Kubernetes provider built from the cluster's endpoint and CA with `aws eks get-token`, and the encrypted
  gp3 StorageClass the workloads' volumes use.
- `ClusterBackends` (`shipyard:aws:ClusterBackends`): the artifact bucket, RDS PostgreSQL (unless the spec gives
  an external database) admitting the cluster's security group, and the tracking server's EKS Pod Identity: its
  Kubernetes ServiceAccount gets one role allowed the bucket's `mlflow/` prefix. No other workload gets an AWS
  identity (they reach artifacts through MLflow's proxy, and none publishes CloudWatch metrics).
- `ClusterAutoscaler` (`shipyard:aws:ClusterAutoscaler`): the Kubernetes Cluster Autoscaler (upstream's AWS
  objects, on the system group) moving the managed node groups between their bounds, from zero: its image
  through an ECR pull-through cache of registry.k8s.io (the nodes have no internet route), its Pod Identity role
  allowed to describe the groups and resize only this cluster's.
- `build_cluster`: the foundation, the cluster, the autoscaler, the backends, then
  `kubernetes.program.build_workloads` with the profile's hooks (`infra.targets.kubernetes.profile.ClusterProfile`).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws
import pulumi_kubernetes
from pulumi_aws import cloudwatch, ec2, ecr, eks
from pulumi_aws import iam as aws_iam
from pulumi_kubernetes.apps.v1 import Deployment, DeploymentSpecArgs
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ResourceRequirementsArgs,
    ServiceAccount,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.rbac.v1 import (
    ClusterRole,
    ClusterRoleBinding,
    PolicyRuleArgs,
    Role,
    RoleBinding,
    RoleRefArgs,
    SubjectArgs,
)
from pulumi_kubernetes.storage.v1 import StorageClass

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets import cluster as cluster_rules
from infra.targets.aws import eks_facts, iam
from infra.targets.aws.foundation import Foundation
from infra.targets.aws.names import aws_name
from infra.targets.aws.network import HTTPS, allow, security_group
from infra.targets.aws.registry import LOG_RETENTION_DAYS, POSTGRES, database_url, postgres_instance
from infra.targets.aws.storage import artifact_bucket, stateful
from infra.targets.base import TargetResources
from infra.targets.cluster import POOL_LABEL
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.profile import ClusterProfile, pool_placement
from infra.targets.kubernetes.program import build_workloads
from infra.targets.kubernetes.workload import container_security, env, http_probe, pod_security
from infra.targets.naming import fit, joined
from infra.targets.objectstore import PREFIXES

#: Control-plane log types sent to CloudWatch Logs.
LOG_TYPES = ("api", "audit", "authenticator")
#: Components of the Kubernetes target that run on the system group (training has its own groups).
MANAGED_POLICY = "arn:aws:iam::aws:policy/{}"


def kubeconfig(name: str, endpoint: str, ca_certificate: str, region: str) -> str:
    """A kubeconfig for the cluster that authenticates with `aws eks get-token` (no credential inside)."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_certificate}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
            "interactiveMode": "Never"}}}],
    }, indent=2)



def kms_for_eks(key_arn: str) -> list[iam.Statement]:
    """What the cluster's role needs of the platform key to envelope-encrypt Kubernetes Secrets."""
    return [iam.statement(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:ListGrants"], [key_arn]),
            iam.statement(["kms:CreateGrant"], [key_arn], {"Bool": {"kms:GrantIsForAWSResource": "true"}})]


def _after(opts: pulumi.ResourceOptions, *resources: pulumi.Resource) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(resources)))


def pod_role(name: str, spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions) -> aws_iam.Role:
    """A role only EKS Pod Identity can hand out (to the pods of the ServiceAccount its association names)."""
    return aws_iam.Role(aws_name(spec.prefix, name, kind="iam_role", autonamed=True), tags=spec.all_tags,
                        assume_role_policy=iam.policy_json(iam.pod_identity_trust, base.account), opts=opts)


class EksCluster(pulumi.ComponentResource):
    """The EKS cluster, its add-ons, node groups and node role, and the Kubernetes provider on it."""

    provider: pulumi_kubernetes.Provider
    name: pulumi.Output[str]
    cluster: eks.Cluster
    #: The security group EKS creates for the control plane and the managed nodes (and so for every pod).
    security_group_id: pulumi.Output[str]
    #: The managed nodes' role (the principal that pulls images).
    node_role: aws_iam.Role

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:aws:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = spec.prefix
        cluster_name = aws_name(prefix, "eks", kind="eks_cluster")
        role = aws_iam.Role(aws_name(prefix, "eks-cluster", kind="iam_role", autonamed=True), tags=spec.all_tags,
                            assume_role_policy=iam.to_json(iam.assume_role("eks.amazonaws.com")), opts=child)
        grants: list[pulumi.Resource] = [
            aws_iam.RolePolicyAttachment(f"{prefix}-eks-cluster-{policy}", role=role.name,
                                         policy_arn=MANAGED_POLICY.format(policy), opts=child)
            for policy in eks_facts.CLUSTER_POLICIES]
        grants.append(aws_iam.RolePolicy(f"{prefix}-eks-cluster-key", role=role.id, opts=child, policy=iam.policy_json(
            lambda key: iam.document(kms_for_eks(key)), base.key.arn)))
        grants.append(cloudwatch.LogGroup(
            f"{prefix}-eks", name=f"/aws/eks/{cluster_name}/cluster", kms_key_id=base.key.arn,
            retention_in_days=LOG_RETENTION_DAYS[spec.is_prod], tags=spec.all_tags, opts=child))
        self.cluster = eks.Cluster(
            f"{prefix}-eks", name=cluster_name, version=eks_facts.EKS_VERSION, role_arn=role.arn,
            vpc_config=eks.ClusterVpcConfigArgs(
                subnet_ids=base.network.subnet_ids, endpoint_private_access=True,
                endpoint_public_access=not spec.networking.private,
                public_access_cidrs=(list(spec.networking.allowed_cidrs) or None) if not spec.networking.private
                else None,
                security_group_ids=[self._api_access(spec, base, child).id] if spec.networking.allowed_cidrs else None),
            access_config=eks.ClusterAccessConfigArgs(authentication_mode="API",
                                                      bootstrap_cluster_creator_admin_permissions=True),
            encryption_config=eks.ClusterEncryptionConfigArgs(
                provider=eks.ClusterEncryptionConfigProviderArgs(key_arn=base.key.arn), resources=["secrets"]),
            enabled_cluster_log_types=list(LOG_TYPES), bootstrap_self_managed_addons=False,
            upgrade_policy=eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=spec.is_prod, tags=spec.all_tags, opts=stateful(_after(child, *grants), spec))
        self.name = self.cluster.name
        self.security_group_id = self.cluster.vpc_config.cluster_security_group_id
        network = [self._addon(spec, addon, child) for addon in eks_facts.NETWORK_ADDONS]
        groups = self._node_groups(spec, base, _after(child, *network))
        on_nodes = _after(child, *network, *groups)
        csi = pod_role("ebs-csi", spec, base, child)
        attachment = aws_iam.RolePolicyAttachment(f"{prefix}-ebs-csi", role=csi.name,
                                                  policy_arn=eks_facts.EBS_CSI_POLICY, opts=child)
        addons = [self._addon(spec, addon, _after(on_nodes, attachment),
                              eks.AddonPodIdentityAssociationArgs(role_arn=csi.arn,
                                                                  service_account=eks_facts.EBS_CSI_ACCOUNT[1])
                              if addon == "aws-ebs-csi-driver" else None)
                  for addon in eks_facts.NODE_ADDONS]
        config = pulumi.Output.all(self.cluster.name, self.cluster.endpoint,
                                   self.cluster.certificate_authority.data).apply(
            lambda v: kubeconfig(v[0], v[1], v[2], base.region))
        # Every Kubernetes object waits for the nodes and their add-ons: the provider does.
        self.provider = pulumi_kubernetes.Provider(f"{prefix}-eks", kubeconfig=config,
                                                   opts=_after(child, *groups, *addons))
        StorageClass(f"{prefix}-gp3", metadata=ObjectMetaArgs(name=cluster_rules.FACTS["aws"].storage_class),
                     provisioner="ebs.csi.aws.com", parameters={"type": "gp3", "encrypted": "true"},
                     volume_binding_mode="WaitForFirstConsumer", allow_volume_expansion=True, reclaim_policy="Delete",
                     opts=pulumi.ResourceOptions(parent=self, provider=self.provider))
        self.register_outputs({"name": self.name, "endpoint": self.cluster.endpoint})

    def _api_access(self, spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions) -> ec2.SecurityGroup:
        """A security group of the API's private endpoint admitting `networking.allowed_cidrs` (CD runners and
        operators on networks connected to the VPC); the VPC itself is admitted by EKS's own group."""
        group = security_group(f"{spec.prefix}-eks-api", "EKS API from networking.allowed_cidrs",
                               base.network.vpc_id, spec.all_tags, opts)
        for index, cidr in enumerate(spec.networking.allowed_cidrs):
            allow(f"{spec.prefix}-eks-api-from-allowed-{index}", group, HTTPS, opts, inbound=True, cidr=cidr,
                  description="operators' range from networking.allowed_cidrs")
        return group

    def _addon(self, spec: PlatformSpec, addon: str, opts: pulumi.ResourceOptions,
               identity: eks.AddonPodIdentityAssociationArgs | None = None) -> eks.Addon:
        """One EKS-managed add-on at the default version for the cluster's Kubernetes version."""
        config = eks_facts.ADDON_CONFIG.get(addon)
        return eks.Addon(f"{spec.prefix}-{addon}", cluster_name=self.cluster.name, addon_name=addon,
                         configuration_values=json.dumps(config) if config else None,
                         pod_identity_associations=[identity] if identity else None,
                         resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                         tags=spec.all_tags, opts=opts)

    def _node_groups(self, spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions) -> list[eks.NodeGroup]:
        """The node role, a launch template per AMI family and the managed node groups."""
        prefix = spec.prefix
        role = aws_iam.Role(aws_name(prefix, "eks-nodes", kind="iam_role", autonamed=True), tags=spec.all_tags,
                            assume_role_policy=iam.to_json(iam.assume_role("ec2.amazonaws.com")), opts=opts)
        self.node_role = role
        grants = [aws_iam.RolePolicyAttachment(f"{prefix}-eks-nodes-{policy}", role=role.name,
                                               policy_arn=MANAGED_POLICY.format(policy), opts=opts)
                  for policy in eks_facts.NODE_POLICIES]
        plans = eks_facts.node_group_plans(spec)
        amis = dict.fromkeys(eks_facts.ami(p) for p in plans)
        templates = {ami: self._launch_template(spec, ami, opts) for ami in amis}
        return [eks.NodeGroup(
            f"{prefix}-nodes-{plan.name}", cluster_name=self.cluster.name,
            node_group_name=aws_name(plan.name, kind="node_group"), node_role_arn=role.arn,
            subnet_ids=base.network.subnet_ids, ami_type=eks_facts.ami(plan), instance_types=[plan.machine],
            capacity_type=eks_facts.capacity_type(plan),
            scaling_config=eks.NodeGroupScalingConfigArgs(min_size=plan.min_nodes, max_size=plan.max_nodes,
                                                          desired_size=plan.min_nodes),
            labels=plan.labels,
            taints=[eks.NodeGroupTaintArgs(key=key, value=value, effect="NO_SCHEDULE") for key, value in plan.taints]
            or None,
            launch_template=eks.NodeGroupLaunchTemplateArgs(
                id=templates[eks_facts.ami(plan)].id, version=templates[eks_facts.ami(plan)].latest_version.apply(str)),
            update_config=eks.NodeGroupUpdateConfigArgs(max_unavailable=1), tags=spec.all_tags,
            # An autoscaler moves the desired size between the bounds; `pulumi up` does not move it back.
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                depends_on=grants, ignore_changes=["scalingConfig.desiredSize"])))
            for plan in plans]

    def _launch_template(self, spec: PlatformSpec, ami: str, opts: pulumi.ResourceOptions) -> ec2.LaunchTemplate:
        """Nodes of one AMI family: IMDSv2 only, one hop (a pod's own network namespace is the second hop, so
        pods cannot read the node role's credentials), an encrypted gp3 data volume."""
        return ec2.LaunchTemplate(
            f"{spec.prefix}-nodes-{ami.split('_')[0].lower()}", update_default_version=True,
            metadata_options=ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            block_device_mappings=[ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=eks_facts.DATA_DEVICE[ami], ebs=ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=eks_facts.DATA_VOLUME_GB, volume_type="gp3", encrypted="true",
                    delete_on_termination="true"))],
            tags=spec.all_tags, opts=opts)


def autoscaler_permissions(cluster_name: str) -> list[iam.Statement]:
    """What the Cluster Autoscaler needs of AWS (upstream's policy for auto-discovered managed node groups):
    describing groups, instances, instance types, launch templates and node groups (AWS authorizes these on `*`
    only), and resizing only the groups EKS tagged as this cluster's."""
    return [iam.statement(["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
                           "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
                           "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
                           "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
                           "eks:DescribeNodegroup"], ["*"]),
            iam.statement(["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                          ["*"], {"StringEquals": {
                              f"aws:ResourceTag/{eks_facts.autoscaler_tag(cluster_name)}": "owned"}})]


def cache_import(node_role_arn: str) -> iam.Document:
    """The cache repository's policy: the nodes may import the upstream image into it on their first pull."""
    return iam.document([{"Sid": "NodesImportUpstream", "Effect": "Allow", "Principal": {"AWS": node_role_arn},
                          "Action": ["ecr:BatchImportUpstreamImage"]}])


#: What the Cluster Autoscaler may do in Kubernetes: upstream's ClusterRole and kube-system Role for AWS
#: (`cluster-autoscaler/cloudprovider/aws/examples/cluster-autoscaler-autodiscover.yaml`), as
#: (api groups, resources, verbs, resource names).
AUTOSCALER_CLUSTER_RULES = (
    ([""], ["events", "endpoints"], ["create", "patch"], None),
    ([""], ["pods/eviction"], ["create"], None),
    ([""], ["pods/status"], ["update"], None),
    ([""], ["endpoints"], ["get", "update"], ["cluster-autoscaler"]),
    ([""], ["nodes"], ["watch", "list", "get", "update"], None),
    ([""], ["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims",
            "persistentvolumes"], ["watch", "list", "get"], None),
    (["extensions"], ["replicasets", "daemonsets"], ["watch", "list", "get"], None),
    (["policy"], ["poddisruptionbudgets"], ["watch", "list"], None),
    (["apps"], ["statefulsets", "replicasets", "daemonsets"], ["watch", "list", "get"], None),
    (["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"],
     ["watch", "list", "get"], None),
    (["batch", "extensions"], ["jobs"], ["get", "list", "watch", "patch"], None),
    (["coordination.k8s.io"], ["leases"], ["create"], None),
    (["coordination.k8s.io"], ["leases"], ["get", "update"], ["cluster-autoscaler"]),
)
AUTOSCALER_ROLE_RULES = (
    ([""], ["configmaps"], ["create", "list", "watch"], None),
    ([""], ["configmaps"], ["delete", "get", "update", "watch"],
     ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"]),
)
#: The autoscaler's metrics and health port, and what it runs with (upstream's requests, as limits too).
AUTOSCALER_PORT = 8085
AUTOSCALER_RESOURCES = {"cpu": "100m", "memory": "600Mi"}


def _rules(rules: tuple) -> list[PolicyRuleArgs]:
    return [PolicyRuleArgs(api_groups=groups, resources=resources, verbs=verbs, resource_names=names)
            for groups, resources, verbs, names in rules]


def _role_ref(kind: str, name: str) -> RoleRefArgs:
    return RoleRefArgs(api_group="rbac.authorization.k8s.io", kind=kind, name=name)


class ClusterAutoscaler(pulumi.ComponentResource):
    """The Kubernetes Cluster Autoscaler on the cluster: without it, managed node groups never leave their size,
    and training groups at zero never run a pod."""

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, cluster: EksCluster,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:aws:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = spec.prefix
        namespace, account = eks_facts.AUTOSCALER_ACCOUNT
        cache = fit(joined(prefix, "k8s"), eks_facts.CACHE_PREFIX_LIMIT)
        rule = ecr.PullThroughCacheRule(f"{prefix}-registry-k8s", ecr_repository_prefix=cache,
                                        upstream_registry_url=eks_facts.AUTOSCALER_UPSTREAM, opts=child)
        # Created here (not on the first pull) so it is encrypted with the platform key and the nodes need no
        # ecr:CreateRepository; the repository policy lets them import the upstream image.
        repository = ecr.Repository(
            f"{prefix}-cluster-autoscaler", name=f"{cache}/{eks_facts.AUTOSCALER_REPOSITORY}", force_delete=True,
            image_tag_mutability="MUTABLE",
            image_scanning_configuration=ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS",
                                                                                 kms_key=base.key.arn)],
            tags=spec.all_tags, opts=child)
        grant = ecr.RepositoryPolicy(f"{prefix}-cluster-autoscaler", repository=repository.name, opts=child,
                                     policy=iam.policy_json(cache_import, cluster.node_role.arn))
        role = pod_role("autoscaler", spec, base, child)
        aws_iam.RolePolicy(f"{prefix}-cluster-autoscaler", role=role.id, opts=child, policy=iam.policy_json(
            lambda cluster_name: iam.document(autoscaler_permissions(cluster_name)), cluster.name))
        association = eks.PodIdentityAssociation(f"{prefix}-cluster-autoscaler", cluster_name=cluster.name,
                                                 namespace=namespace, service_account=account, role_arn=role.arn,
                                                 tags=spec.all_tags, opts=child)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        labels = {"app.kubernetes.io/name": account}
        metadata = ObjectMetaArgs(name=account, namespace=namespace, labels=labels)
        ServiceAccount(f"{prefix}-cluster-autoscaler", metadata=metadata, automount_service_account_token=False,
                       opts=on_cluster)
        subjects = [SubjectArgs(kind="ServiceAccount", name=account, namespace=namespace)]
        ClusterRole(f"{prefix}-cluster-autoscaler", metadata=ObjectMetaArgs(name=account, labels=labels),
                    rules=_rules(AUTOSCALER_CLUSTER_RULES), opts=on_cluster)
        ClusterRoleBinding(f"{prefix}-cluster-autoscaler", metadata=ObjectMetaArgs(name=account, labels=labels),
                           role_ref=_role_ref("ClusterRole", account), subjects=subjects, opts=on_cluster)
        Role(f"{prefix}-cluster-autoscaler", metadata=metadata, rules=_rules(AUTOSCALER_ROLE_RULES), opts=on_cluster)
        RoleBinding(f"{prefix}-cluster-autoscaler", metadata=metadata, role_ref=_role_ref("Role", account),
                    subjects=subjects, opts=on_cluster)
        container = ContainerArgs(
            name=account, image=repository.repository_url.apply(lambda url: f"{url}:{eks_facts.AUTOSCALER_VERSION}"),
            command=["/cluster-autoscaler"], args=cluster.name.apply(eks_facts.autoscaler_args),
            # Pods cannot reach the instance metadata (one hop): the region comes from the environment.
            env=[env("AWS_REGION", base.region)],
            ports=[ContainerPortArgs(name="metrics", container_port=AUTOSCALER_PORT)],
            resources=ResourceRequirementsArgs(requests=AUTOSCALER_RESOURCES, limits=AUTOSCALER_RESOURCES),
            liveness_probe=http_probe("/health-check", AUTOSCALER_PORT), security_context=container_security())
        # The Pod Identity webhook injects credentials when a pod is created: the association comes first.
        Deployment(f"{prefix}-cluster-autoscaler", metadata=metadata, spec=DeploymentSpecArgs(
            replicas=1, selector=LabelSelectorArgs(match_labels=labels), template=PodTemplateSpecArgs(
                metadata=ObjectMetaArgs(labels=labels), spec=PodSpecArgs(
                    containers=[container], service_account_name=account, automount_service_account_token=True,
                    priority_class_name="system-cluster-critical", security_context=pod_security(fs_group=False),
                    node_selector={POOL_LABEL: "system"}))),
            opts=_after(on_cluster, association, grant, rule))
        self.register_outputs({})


class ClusterBackends(pulumi.ComponentResource):
    """The registry's cloud side on the cluster profile: the bucket, RDS, the tracking server's identity."""

    artifacts: pulumi.Output[str]
    database_url: pulumi.Output[str] | None
    database_ready: list[pulumi.Resource]

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, cluster: EksCluster, namespace: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:aws:ClusterBackends", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = spec.prefix
        bucket = artifact_bucket(spec, base.key, child)
        self.artifacts = bucket.uri(PREFIXES["mlflow"])
        role = pod_role("mlflow", spec, base, child)
        aws_iam.RolePolicy(f"{prefix}-mlflow", role=role.id, opts=child, policy=iam.policy_json(
            lambda arn, key: iam.document([
                *iam.s3_access(arn, read=[PREFIXES["mlflow"]], write=[PREFIXES["mlflow"]]), iam.kms_use(key)]),
            bucket.arn, base.key.arn))
        eks.PodIdentityAssociation(f"{prefix}-mlflow", cluster_name=cluster.name, namespace=namespace,
                                   service_account=layout.MLFLOW, role_arn=role.arn, tags=spec.all_tags, opts=child)
        self.database_url, self.database_ready = None, []
        if spec.registry.database.external_url is None:
            instance, password, db_sg = postgres_instance(spec, base, child)
            allow(f"{prefix}-database-from-cluster", db_sg, POSTGRES, child, inbound=True,
                  peer_group=cluster.security_group_id, description="the tracking server's pods on the cluster")
            self.database_url = pulumi.Output.secret(pulumi.Output.all(password, instance.address).apply(
                lambda v: database_url(v[0], v[1])))
            self.database_ready = [instance]
        self.register_outputs({"artifacts": self.artifacts})


def build_cluster(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
                  secrets: SecretValues, provider: pulumi_aws.Provider) -> TargetResources:
    """Declare the EKS cluster profile: the foundation, the cluster, the backends, and the Kubernetes target's
    workloads on the cluster."""
    under = pulumi.ResourceOptions(parent=platform, providers={"aws": provider})
    workloads = cluster_rules.workload_spec(spec)
    base = Foundation(f"{spec.prefix}-foundation", spec, image, overview=None, opts=under)
    cluster = EksCluster(f"{spec.prefix}-cluster", spec, base, opts=under)
    ClusterAutoscaler(f"{spec.prefix}-autoscaler", spec, base, cluster, opts=under)
    backends = ClusterBackends(f"{spec.prefix}-backends", spec, base, cluster, layout.namespace_name(workloads),
                               opts=under)
    profile = ClusterProfile(provider=cluster.provider, image=base.image, database_url=backends.database_url,
                             database_ready=backends.database_ready, artifacts=backends.artifacts,
                             artifact_ports=eks_facts.ARTIFACT_PORTS, placement=pool_placement())
    built = build_workloads(platform, workloads, package, image, secrets, profile)
    built.extra_outputs.update(cluster=cluster.name, image_repository=base.repository_url)
    return built
