"""The spec's secrets as Pulumi secret outputs, read once by the program's entry point.

A `{secure: ...}` entry is Pulumi ciphertext in the stack file; Pulumi decrypts it into the stack's config
(`shipyard:<top-level key>`). The program reads every such entry here, before any component is declared,
and hands the values to the target: components never read config themselves. References
(`{ref: ...}`) name a secret in the target's own store and are resolved by the target.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
from pydantic import BaseModel

from infra.spec import PlatformSpec, Secret
from infra.stackfile import PROJECT

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class SecretValues:
    """Decrypted values of a spec's `{secure: ...}` entries, keyed by the key path that holds each."""

    def __init__(self, values: Mapping[str, pulumi.Output[str]] | None = None):
        self._values = dict(values or {})

    def value(self, secret: Secret) -> pulumi.Output[str]:
        """The value of a `secure` entry, as a Pulumi secret."""
        if secret.secure is None:
            raise ValueError(f"{secret.source}: a reference ({secret.ref!r}) has no value here; the target resolves it")
        try:
            return self._values[secret.source]
        except KeyError:
            raise ValueError(f"{secret.source}: this secret was not read by the program") from None


def spec_secrets(node: Any) -> Iterator[Secret]:
    """Every `Secret` in a spec (or any part of one)."""
    if isinstance(node, Secret):
        yield node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from spec_secrets(getattr(node, name))
    elif isinstance(node, list | tuple):
        for item in node:
            yield from spec_secrets(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from spec_secrets(item)


def _dig(value: Any, parts: list[str | int]) -> str:
    for part in parts:
        value = value[part]
    return str(value)


def _read(config: pulumi.Config, source: str) -> pulumi.Output[str]:
    parts: list[str | int] = [name or int(index) for name, index in _PART.findall(source)]
    top, rest = str(parts[0]), parts[1:]
    return pulumi.Output.secret(config.require_secret_object(top).apply(lambda obj: _dig(obj, rest)))


def read_secrets(spec: PlatformSpec) -> SecretValues:
    """Read every `secure` entry of the spec from the stack's config, where Pulumi decrypts it."""
    config = pulumi.Config(PROJECT)
    return SecretValues({s.source: _read(config, s.source) for s in spec_secrets(spec) if s.secure is not None})
