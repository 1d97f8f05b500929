"""Turning a spec `Secret` into a Pulumi secret output, read from the stack's encrypted config."""

from __future__ import annotations

import re
from typing import Any

import pulumi

from infra.spec import Secret
from infra.stackfile import PROJECT

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _dig(value: Any, parts: list[str | int]) -> str:
    for part in parts:
        value = value[part]
    return str(value)


def secret_output(secret: Secret) -> pulumi.Output[str]:
    """The decrypted value of a `{secure: ...}` spec entry, as a Pulumi secret.

    The value is read from the stack's config (`shipyard:<top-level key>`), where Pulumi decrypts it;
    references (`{ref: ...}`) are resolved by the target, which knows its own secret store.
    """
    if secret.secure is None:
        raise ValueError(f"{secret.source}: a reference ({secret.ref!r}) has no value to read; the target resolves it")
    parts: list[str | int] = [name or int(index) for name, index in _PART.findall(secret.source)]
    top, rest = str(parts[0]), parts[1:]
    value = pulumi.Config(PROJECT).require_secret_object(top)
    return pulumi.Output.secret(value.apply(lambda obj: _dig(obj, rest)))
