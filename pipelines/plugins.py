"""The one resolver for `name -> "module:attr"` registries (steps, triggers, sinks, estimators, targets, commands).

A registry maps a short name onto a reference; the reference's module is imported only when the name is used,
so a registry costs nothing until then and optional dependencies stay optional.
"""

from __future__ import annotations

import importlib
from typing import Any


def resolve(reference: str) -> Any:
    """The object `module:attr` names (`attr` may be dotted), or the module itself for a bare `module`.

    ImportError when the module cannot be imported or has no such attribute.
    """
    module_name, colon, attribute = reference.partition(":")
    if not module_name or (colon and not attribute):
        raise ImportError(f"{reference!r} is not a 'module:attr' reference")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if colon else ():
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ImportError(f"{reference!r}: {module_name} has no attribute {attribute!r}") from None
    return found
