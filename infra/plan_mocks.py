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


#: Computed outputs by exact type token. Targets add their resource types here.
BY_TYPE: dict[str, Computed] = {
    "random:index/randomPassword:RandomPassword": _random_password,
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
        return handler(dict(args.args), self.spec), None
