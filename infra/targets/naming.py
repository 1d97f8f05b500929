"""Fitting generated names into a cloud's length limits: one rule shared by every cloud target.

A legal spec (a 40-character platform name, a 7-character environment, a 40-character model name) easily
exceeds the limits clouds put on resource names. A name that would be too long keeps its readable start
and ends in a short hash of the whole, so it stays unique and stable.
"""

from __future__ import annotations

import hashlib

#: Pulumi's auto-name is the logical name plus '-' and seven random hex digits.
AUTONAME_SUFFIX = 8
HASH_LENGTH = 8


def joined(*parts: str) -> str:
    """The non-empty `parts` joined with '-' (each stripped of leading and trailing '-')."""
    return "-".join(p.strip("-") for p in parts if p)


def fit(name: str, limit: int) -> str:
    """`name` if it fits in `limit` characters, else its start and an 8-digit hash of the whole."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LENGTH]
    return f"{name[:limit - HASH_LENGTH - 1].rstrip('-')}-{digest}"
