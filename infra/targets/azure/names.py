"""Physical names for Azure resources, within each kind's length and character rules.

Azure's rules differ per kind (a storage account is 3-24 lowercase letters and digits and globally unique, a
Container App 2-32 lowercase letters, digits and '-'), and a legal spec (a 40-character platform name, 'staging',
a 40-character model name) exceeds most of them. A name keeps its readable start and, when cut, ends in a short
hash of the whole, so it stays unique and stable. Names that must be unique across Azure (storage account, Key
Vault, registry, PostgreSQL server) also carry a hash of the subscription and the prefix, so two subscriptions
deploying the same spec never collide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """One kind's rule: length bounds, whether '-' is allowed, and the full pattern Azure enforces."""

    low: int
    high: int
    hyphens: bool
    pattern: str

    def accepts(self, name: str) -> bool:
        """Whether Azure accepts `name` for this kind."""
        return self.low <= len(name) <= self.high and re.fullmatch(self.pattern, name) is not None


_DASHED = r"[a-z][a-z0-9-]*[a-z0-9]"
#: Per kind of resource: what Azure accepts (the apply-time rules of docs/azure.md, "Names").
RULES: dict[str, NameRule] = {
    "resource_group": NameRule(1, 90, True, _DASHED),
    "network": NameRule(2, 64, True, _DASHED),
    "storage": NameRule(3, 24, False, r"[a-z0-9]+"),
    "key_vault": NameRule(3, 24, True, r"[a-z](?!.*--)[a-z0-9-]*[a-z0-9]"),
    "registry": NameRule(5, 50, False, r"[a-z0-9]+"),
    "postgres": NameRule(3, 63, True, _DASHED),
    "container_app": NameRule(2, 32, True, _DASHED),
    "environment": NameRule(2, 60, True, _DASHED),
    "identity": NameRule(3, 128, True, _DASHED),
    "workspace": NameRule(4, 63, True, _DASHED),
    "alert": NameRule(1, 260, True, _DASHED),
    "action_group_short": NameRule(1, 12, False, r"[a-z0-9]+"),
    "container": NameRule(3, 63, True, _DASHED),
    "secret": NameRule(1, 127, True, _DASHED),
    "cluster": NameRule(1, 63, True, _DASHED),
    "dns_prefix": NameRule(1, 54, True, _DASHED),
    "node_pool": NameRule(1, 12, False, r"[a-z][a-z0-9]*"),
}
#: Kinds whose names are global DNS names: they carry a hash of the subscription and the prefix.
GLOBAL = frozenset({"storage", "key_vault", "registry", "postgres"})
HASH_LENGTH = 8


def _digest(text: str, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def azure_name(*parts: str, kind: str) -> str:
    """`parts` joined ('-', or nothing where '-' is not allowed), cut to the kind's limit with a hash suffix."""
    rule = RULES[kind]
    joiner = "-" if rule.hyphens else ""
    name = joiner.join(p.strip("-") if rule.hyphens else p.replace("-", "") for p in parts if p)
    if len(name) <= rule.high:
        return name
    keep = rule.high - HASH_LENGTH - len(joiner)
    return f"{name[:keep].rstrip('-')}{joiner}{_digest(name)}"


def global_name(prefix: str, role: str, subscription: str, *, kind: str) -> str:
    """A globally unique name: the readable prefix and role, cut to fit, then a hash of subscription and prefix.

    The hash always appears (whatever the length), so the name is the same for a stack on every run and
    different for the same spec in another subscription.
    """
    rule = RULES[kind]
    if kind not in GLOBAL:
        raise ValueError(f"{kind!r} names are not global; use azure_name")
    joiner = "-" if rule.hyphens else ""
    suffix = _digest(f"{subscription}/{prefix}/{role}")
    readable = azure_name(prefix, role, kind=kind)
    keep = rule.high - HASH_LENGTH - len(joiner)
    head = readable[:keep].rstrip("-")
    if rule.hyphens:
        head = re.sub("-{2,}", "-", head)
    return f"{head}{joiner}{suffix}"
