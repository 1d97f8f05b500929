"""The platform's network: a VPC with private subnets only and the VPC endpoints the workloads call,
or an existing VPC named in the spec; security groups with exactly the flows the workloads need.

No subnet has a route to the internet and nothing gets a public address: SageMaker jobs and endpoints,
the MLflow task and the database (or, on the EKS cluster profile, the cluster's nodes and pods) reach AWS's
APIs through interface endpoints (and S3 through a gateway endpoint). With `networking.existing_network`, the
VPC's own routing (NAT or endpoints) is used and its private subnets are the ones tagged `shipyard:tier=private`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
from pulumi_aws import ec2, get_availability_zones_output, vpc

from infra.spec import PlatformSpec
from infra.targets.cluster import on_cluster

HTTPS = 443
#: Tag that marks the private subnets of an existing VPC the platform may use.
PRIVATE_TIER_TAG = ("shipyard:tier", "private")

#: Interface endpoints every platform needs, by short name -> service suffix (com.amazonaws.<region>.<suffix>).
INTERFACE_ENDPOINTS: dict[str, str] = {
    "ecr-api": "ecr.api",           # image manifests (SageMaker, Fargate)
    "ecr-dkr": "ecr.dkr",           # image layers
    "logs": "logs",                 # job, endpoint and task logs
    "sts": "sts",                   # credentials of the roles inside jobs
    "sagemaker-api": "sagemaker.api",          # the monitor and CD start pipelines
    "sagemaker-runtime": "sagemaker.runtime",  # invoking endpoints from inside the VPC
    "monitoring": "monitoring",     # CloudWatch PutMetricData from the drift job
}
#: Extra interface endpoints per registry mode.
REGISTRY_ENDPOINTS: dict[str, dict[str, str]] = {
    "self-hosted": {"secretsmanager": "secretsmanager",  # the MLflow task's database secret
                    "ssmmessages": "ssmmessages"},        # ECS Exec: port forwarding to the tracking server
    "sagemaker": {"mlflow": "experiments"},               # SageMaker MLflow: aws.sagemaker.<region>.experiments
}
#: Interface endpoints of the EKS cluster profile (no SageMaker, no registry mode): images, logs, credentials,
#: and what the nodes, the VPC CNI and the Cluster Autoscaler call.
CLUSTER_ENDPOINTS: dict[str, str] = {
    "ecr-api": "ecr.api", "ecr-dkr": "ecr.dkr", "logs": "logs", "sts": "sts",
    "ec2": "ec2",                   # the VPC CNI's network interfaces and addresses
    "eks": "eks",                   # the EKS API (nodes joining, `aws eks update-kubeconfig` inside the VPC)
    "eks-auth": "eks-auth",         # EKS Pod Identity: pods' credentials
    "autoscaling": "autoscaling",   # the Cluster Autoscaler resizing the node groups' Auto Scaling groups
}


def endpoint_service(region: str, suffix: str) -> str:
    """The full VPC endpoint service name of a service suffix."""
    if suffix == "experiments":
        return f"aws.sagemaker.{region}.experiments"
    return f"com.amazonaws.{region}.{suffix}"


def interface_endpoints(registry_mode: str, cluster: bool = False) -> dict[str, str]:
    """Short name -> service suffix of every interface endpoint a platform in this registry mode needs (on the
    EKS cluster profile, with `cluster`, the cluster's)."""
    if cluster:
        return dict(CLUSTER_ENDPOINTS)
    return {**INTERFACE_ENDPOINTS, **REGISTRY_ENDPOINTS[registry_mode]}


def subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """`count` equal private subnets carved from the start of the VPC range (four bits smaller than the VPC)."""
    network = ipaddress.ip_network(vpc_cidr)
    new_prefix = min(network.prefixlen + 4, 28)
    subnets = list(network.subnets(new_prefix=new_prefix))
    if len(subnets) < count:
        raise ValueError(f"{vpc_cidr} is too small for {count} subnets")
    return [str(s) for s in subnets[:count]]


@dataclass
class Network:
    """What the other components need to place their workloads."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str]]
    #: The security group of SageMaker jobs and endpoints.
    workloads_sg: ec2.SecurityGroup
    #: Where HTTPS to AWS's APIs goes: the endpoints' security group (own VPC) or None (existing VPC: any address).
    endpoints_sg: ec2.SecurityGroup | None
    #: The S3 gateway endpoint's prefix list (own VPC only).
    s3_prefix_list: pulumi.Output[str] | None


def security_group(name: str, description: str, vpc_id: pulumi.Input[str], tags: dict[str, str],
                   opts: pulumi.ResourceOptions) -> ec2.SecurityGroup:
    """An empty security group (the provider drops AWS's default allow-all egress); flows are added by `allow`."""
    return ec2.SecurityGroup(name, description=description, vpc_id=vpc_id, revoke_rules_on_delete=True,
                             tags={**tags, "Name": name}, opts=opts)


def allow(name: str, group: ec2.SecurityGroup, port: int, opts: pulumi.ResourceOptions, *, inbound: bool,
          peer_group: ec2.SecurityGroup | pulumi.Output[str] | None = None, cidr: pulumi.Input[str] | None = None,
          prefix_list: pulumi.Input[str] | None = None, description: str = "") -> None:
    """One TCP flow on `port` into (inbound) or out of `group`, from/to exactly one peer (a security group, or
    the id of one the stack does not declare, such as the security group EKS creates for a cluster)."""
    if sum(p is not None for p in (peer_group, cidr, prefix_list)) != 1:
        raise ValueError(f"{name}: a flow names exactly one peer")
    rule = vpc.SecurityGroupIngressRule if inbound else vpc.SecurityGroupEgressRule
    rule(name, security_group_id=group.id, ip_protocol="tcp", from_port=port, to_port=port,
         referenced_security_group_id=peer_group.id if isinstance(peer_group, ec2.SecurityGroup) else peer_group,
         cidr_ipv4=cidr, prefix_list_id=prefix_list, description=description or name, opts=opts)


def allow_aws_apis(name: str, group: ec2.SecurityGroup, network: Network, opts: pulumi.ResourceOptions) -> None:
    """HTTPS from `group` to AWS's APIs: the interface endpoints and S3 (own VPC), or any address (existing VPC)."""
    if network.endpoints_sg is None:
        allow(f"{name}-to-aws-apis", group, HTTPS, opts, inbound=False, cidr="0.0.0.0/0",
              description="HTTPS to AWS APIs through the existing VPC's routing")
        return
    allow(f"{name}-to-endpoints", group, HTTPS, opts, inbound=False, peer_group=network.endpoints_sg,
          description="HTTPS to the VPC interface endpoints")
    allow(f"{name}-to-s3", group, HTTPS, opts, inbound=False, prefix_list=network.s3_prefix_list,
          description="HTTPS to S3 through the gateway endpoint")


def build_network(spec: PlatformSpec, opts: pulumi.ResourceOptions) -> Network:
    """The platform's VPC (or the existing one), its private subnets and the workloads' security group."""
    if spec.networking.existing_network:
        return _existing_network(spec, opts)
    return _own_network(spec, opts)


def _existing_network(spec: PlatformSpec, opts: pulumi.ResourceOptions) -> Network:
    vpc_id = spec.networking.existing_network
    invoke = pulumi.InvokeOptions(parent=opts.parent)
    found = ec2.get_vpc_output(id=vpc_id, opts=invoke)
    subnets = ec2.get_subnets_output(
        filters=[ec2.GetSubnetsFilterArgs(name="vpc-id", values=[vpc_id])],
        tags=dict([PRIVATE_TIER_TAG]), opts=invoke)
    workloads = security_group(f"{spec.prefix}-workloads", "SageMaker jobs and endpoints", vpc_id,
                               spec.all_tags, opts)
    network = Network(vpc_id=pulumi.Output.from_input(vpc_id), vpc_cidr=found.cidr_block, subnet_ids=subnets.ids,
                      workloads_sg=workloads, endpoints_sg=None, s3_prefix_list=None)
    allow_aws_apis(f"{spec.prefix}-workloads", workloads, network, opts)
    return network


def _own_network(spec: PlatformSpec, opts: pulumi.ResourceOptions) -> Network:
    settings = spec.aws_settings
    tags = spec.all_tags
    name = spec.prefix
    region = spec.region or ""
    main = ec2.Vpc(f"{name}-vpc", cidr_block=settings.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                   tags={**tags, "Name": f"{name}-vpc"}, opts=opts)
    zones = get_availability_zones_output(state="available", opts=pulumi.InvokeOptions(parent=opts.parent))
    routes = ec2.RouteTable(f"{name}-private", vpc_id=main.id, tags={**tags, "Name": f"{name}-private"}, opts=opts)
    subnets = []
    for index, cidr in enumerate(subnet_cidrs(settings.vpc_cidr, settings.availability_zones)):
        subnet = ec2.Subnet(f"{name}-private-{index}", vpc_id=main.id, cidr_block=cidr,
                            availability_zone=zones.names[index], map_public_ip_on_launch=False,
                            tags={**tags, "Name": f"{name}-private-{index}", PRIVATE_TIER_TAG[0]: PRIVATE_TIER_TAG[1]},
                            opts=opts)
        ec2.RouteTableAssociation(f"{name}-private-{index}", subnet_id=subnet.id, route_table_id=routes.id, opts=opts)
        subnets.append(subnet)

    endpoints_sg = security_group(f"{name}-endpoints", "VPC interface endpoints", main.id, tags, opts)
    allow(f"{name}-endpoints-from-vpc", endpoints_sg, HTTPS, opts, inbound=True, cidr=main.cidr_block,
          description="HTTPS from the platform's subnets")
    subnet_ids = [s.id for s in subnets]
    for short, suffix in interface_endpoints(settings.registry_mode, on_cluster(spec)).items():
        ec2.VpcEndpoint(f"{name}-{short}", vpc_id=main.id, service_name=endpoint_service(region, suffix),
                        vpc_endpoint_type="Interface", private_dns_enabled=True, subnet_ids=subnet_ids,
                        security_group_ids=[endpoints_sg.id], tags={**tags, "Name": f"{name}-{short}"}, opts=opts)
    s3 = ec2.VpcEndpoint(f"{name}-s3", vpc_id=main.id, service_name=endpoint_service(region, "s3"),
                         vpc_endpoint_type="Gateway", route_table_ids=[routes.id],
                         tags={**tags, "Name": f"{name}-s3"}, opts=opts)

    workloads = security_group(f"{name}-workloads", "SageMaker jobs and endpoints", main.id, tags, opts)
    network = Network(vpc_id=main.id, vpc_cidr=main.cidr_block, subnet_ids=pulumi.Output.all(*subnet_ids),
                      workloads_sg=workloads, endpoints_sg=endpoints_sg, s3_prefix_list=s3.prefix_list_id)
    allow_aws_apis(f"{name}-workloads", workloads, network, opts)
    return network
