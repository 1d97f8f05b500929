"""Physical names and labels for GCP resources, within each kind's limits (pure: no SDK).

One naming function (`gcp_name`) for every explicit name, shortened with a hash suffix when a kind's
limit is exceeded (the rule the AWS target uses: `infra.targets.naming`). The bucket and the Cloud SQL
instance are auto-named by Pulumi (a random suffix): bucket names are global, and a deleted Cloud SQL
instance's name stays taken for about a week. Labels are the spec's tags made legal for GCP.
"""

from __future__ import annotations

import re

from infra.targets.naming import AUTONAME_SUFFIX, fit, joined

#: Longest name per kind of resource (GCP's API limits; `min` lengths are met by the prefix's shape).
LIMITS = {
    "bucket": 63,              # globally unique, lowercase, no 'goog' prefix and no 'google'
    "service_account": 30,     # 6-30, RFC 1035
    "run_service": 49,         # Cloud Run service
    "run_job": 63,             # Cloud Run job
    "sql_instance": 80,        # the project id and the name together stay under 98
    "workflow": 64,
    "scheduler": 500,
    "repository": 63,          # Artifact Registry repository id
    "key_ring": 63,
    "crypto_key": 63,
    "secret": 255,
    "network": 63,             # networks, subnetworks, firewall rules, global addresses
    "topic": 255,
    "trigger": 63,             # Eventarc trigger
    "display": 100,            # display names of alert policies and notification channels
}

#: GCP label keys and values: lowercase letters, digits, '_' and '-'; keys start with a letter; 63 at most.
LABEL_LIMIT = 63
_LABEL_ILLEGAL = re.compile(r"[^a-z0-9_-]")


def gcp_name(*parts: str, kind: str, autonamed: bool = False) -> str:
    """`parts` joined with '-', shortened to the limit of `kind` with a hash suffix when needed.

    With `autonamed`, the result is a logical name Pulumi will extend by `AUTONAME_SUFFIX` characters.
    """
    return fit(joined(*parts), LIMITS[kind] - (AUTONAME_SUFFIX if autonamed else 0))


def account_id(prefix: str, workload: str) -> str:
    """A service account id (6-30 characters, RFC 1035) for one workload of the platform."""
    return gcp_name(prefix, workload, kind="service_account")


def label_value(text: str) -> str:
    """`text` as a legal label value: lowercased, other characters as '_', at most 63 characters."""
    return fit(_LABEL_ILLEGAL.sub("_", text.lower()), LABEL_LIMIT)


def label_key(text: str) -> str:
    """`text` as a legal label key: a legal value that starts with a letter ('k_' prepended otherwise)."""
    key = label_value(text)
    return key if key[:1].isalpha() else fit(f"k_{key}", LABEL_LIMIT)


def labels(tags: dict[str, str]) -> dict[str, str]:
    """The spec's tags as GCP labels ('shipyard:platform' -> 'shipyard_platform'); the last tag wins a clash."""
    return {label_key(key): label_value(value) for key, value in tags.items()}
