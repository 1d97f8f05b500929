"""Plausible computed outputs for mocked resources and invokes, so an offline plan is filled in.

The mock runtime returns only what `new_resource` gives back; anything else a resource computes
(an ARN, an endpoint, a generated password) would come back as None and silently empty every input
that depends on it. Each table maps a type token (or a package prefix) to the computed values.
Inputs arrive camelCase, as on the wire.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

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


#: Computed outputs by exact type token. Targets add their resource types here.
BY_TYPE: dict[str, Computed] = {
    "random:index/randomPassword:RandomPassword": _random_password,
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
    "aws:ec2/vpcEndpoint:VpcEndpoint": _aws_resource("ec2", "vpc-endpoint/vpce-{hex}", prefixListId="pl-{hex}"),
}

#: Computed outputs by package prefix, merged under the exact-type entries.
BY_PACKAGE: dict[str, Computed] = {
    "aws:": _aws_arn("mock", ""),
    "kubernetes:": _k8s_metadata,
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
    "aws:secretsmanager/getSecretVersion:getSecretVersion": lambda args, spec: {
        "arn": str(args.get("secretId", "")), "secretId": str(args.get("secretId", "")),
        "secretString": "https://hooks.example.com/mock", "versionId": "mock"},
}


class PlanMocks(pulumi_mocks.Mocks):
    """Mocks that echo inputs and add each resource type's computed outputs."""

    def __init__(self, spec: PlatformSpec):
        self.spec = spec

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """Echo the inputs plus plausible computed values; the id is stable per name."""
        state = dict(args.inputs)
        for prefix, computed in BY_PACKAGE.items():
            if args.typ.startswith(prefix):
                state.update({k: v for k, v in computed(args.name, args.inputs, self.spec).items() if k not in state})
        if args.typ in BY_TYPE:
            state.update(BY_TYPE[args.typ](args.name, args.inputs, self.spec))
        return f"{args.name}-{_fake_hex(args.typ + args.name, 8)}", state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Answer known invokes; an unknown one is an error, so a plan never runs on silent empties."""
        handler = INVOKES.get(args.token)
        if handler is None:
            raise NotImplementedError(f"the offline plan has no mock for invoke {args.token!r}; add it to INVOKES")
        return handler(dict(args.args), self.spec), []
