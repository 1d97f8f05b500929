"""The platform VPC's address plan, pure: the rules check it and the network program builds it."""

from __future__ import annotations

import ipaddress

#: The VPC block sizes AWS accepts (CreateVpc: /16 to /28).
VPC_PREFIXES = (16, 28)
#: Each private subnet is this many bits smaller than the VPC (16 subnets' room), and no smaller than a /28.
SUBNET_BITS = 4


def subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """`count` equal private subnets carved from the start of the VPC range (four bits smaller than the VPC)."""
    network = ipaddress.ip_network(vpc_cidr)
    new_prefix = min(network.prefixlen + SUBNET_BITS, VPC_PREFIXES[1])
    subnets = list(network.subnets(new_prefix=new_prefix))
    if len(subnets) < count:
        raise ValueError(f"{vpc_cidr} is too small for {count} subnets")
    return [str(s) for s in subnets[:count]]


def vpc_cidr_problem(vpc_cidr: str, zones: int) -> str | None:
    """Why AWS (or the subnet plan) would refuse `vpc_cidr` for `zones` private subnets, or None."""
    try:
        network = ipaddress.IPv4Network(vpc_cidr)
    except ValueError as exc:
        return f"{vpc_cidr!r} is not an IPv4 network in CIDR notation (e.g. '10.42.0.0/16'): {exc}"
    low, high = VPC_PREFIXES
    if not low <= network.prefixlen <= high:
        return f"{vpc_cidr!r}: AWS accepts VPC blocks from /{low} to /{high}"
    try:
        subnet_cidrs(vpc_cidr, zones)
    except ValueError as exc:
        return f"{exc} (aws.availability_zones); give a larger block"
    return None
