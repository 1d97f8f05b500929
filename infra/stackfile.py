"""Reading a stack: the shared spec, the stack file's overlay, environment defaults, one validation.

A stack file is an ordinary Pulumi stack config (`stacks/Pulumi.<stack>.yaml`); its `shipyard:<key>`
entries overlay the project's shared spec (`stacks/shipyard.yaml`), deep-merged: mappings merge key by
key, anything else (lists included) replaces. Every problem is reported at once, each with the file
and key path it comes from; nothing is returned unless the whole spec is valid.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from infra import spec as spec_module
from infra.spec import ENVIRONMENT_DEFAULTS, MODEL_ENVIRONMENT_DEFAULTS, PlatformSpec

PROJECT = "shipyard"
SHARED_SPEC = "shipyard.yaml"
#: Top-level keys Pulumi itself writes into a stack file.
PULUMI_STACK_KEYS = {"config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack: the file, the key path inside the spec, and what is wrong."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class SpecError(Exception):
    """The stack's spec is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedStack:
    """A validated stack: its name, its files and the spec they make together."""

    stack: str
    spec: PlatformSpec
    stack_file: Path
    shared_file: Path | None
    overlay: dict[str, Any] = field(default_factory=dict)
    merged: dict[str, Any] = field(default_factory=dict)


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: the working directory) holding Pulumi.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    package_root = Path(__file__).resolve().parent.parent
    if (package_root / "Pulumi.yaml").is_file():
        return package_root
    raise SpecError([Problem(str(here), "", "no Pulumi.yaml here or above; run inside a shipyard project")])


def stack_file_path(project_dir: Path, stack: str) -> Path:
    """Where Pulumi keeps the config of `stack` in this project (`stackConfigDir: stacks`)."""
    return project_dir / "stacks" / f"Pulumi.{stack}.yaml"


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`overlay` on top of `base`: mappings merge key by key; any other value replaces. Inputs are untouched."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def format_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('models', 0, 'serving', 'max_replicas') -> 'models[0].serving.max_replicas'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    try:
        text = path.read_text()
    except OSError as exc:
        return None, [Problem(str(path), "", f"cannot read: {exc.strerror or exc}")]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return None, [Problem(str(path), "", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")]


def read_overlay(path: Path) -> tuple[dict[str, Any], list[Problem]]:
    """The `shipyard:` keys of a Pulumi stack file, without the namespace."""
    data, problems = _read_yaml(path)
    if problems:
        return {}, problems
    data = data or {}
    if not isinstance(data, dict):
        return {}, [Problem(str(path), "", "a stack file must be a mapping with a 'config' key")]
    for key in data:
        if key not in PULUMI_STACK_KEYS:
            hint = difflib.get_close_matches(str(key), sorted(PULUMI_STACK_KEYS), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(Problem(str(path), str(key), f"unknown top-level key{extra}"))
    config = data.get("config") or {}
    if not isinstance(config, dict):
        return {}, [*problems, Problem(str(path), "config", "must be a mapping of '<namespace>:<key>' entries")]
    overlay: dict[str, Any] = {}
    for key, value in config.items():
        namespace, sep, name = str(key).partition(":")
        if not sep:
            problems.append(Problem(str(path), str(key), f"config keys need a namespace: '{PROJECT}:{key}'"))
        elif namespace == PROJECT:
            overlay[name] = value
        # Other namespaces (aws:, kubernetes:, ...) configure providers, not the spec.
    return overlay, problems


def _annotate_secrets(node: Any, loc: tuple[Any, ...] = ()) -> Any:
    """Record in each `{secure: ...}` / `{ref: ...}` mapping the key path that holds it."""
    if isinstance(node, dict):
        if node.keys() and set(node) <= {"secure", "ref"}:
            return {**node, "source": format_path(loc)}
        return {k: _annotate_secrets(v, (*loc, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_annotate_secrets(v, (*loc, i)) for i, v in enumerate(node)]
    return node


def _secure_paths(node: Any, loc: tuple[Any, ...] = ()) -> list[str]:
    """Key paths of every `{secure: ...}` entry under `node`."""
    if isinstance(node, dict):
        if "secure" in node:
            return [format_path(loc)]
        return [p for k, v in node.items() for p in _secure_paths(v, (*loc, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _secure_paths(v, (*loc, i))]
    return []


def with_defaults(shared: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Environment defaults, then the shared spec, then the stack overlay; each model on its own defaults."""
    merged = deep_merge(shared, overlay)
    environment = merged.get("environment", "dev")
    if environment in ENVIRONMENT_DEFAULTS:
        merged = deep_merge(ENVIRONMENT_DEFAULTS[environment], merged)
        model_defaults = MODEL_ENVIRONMENT_DEFAULTS[environment]
        if isinstance(merged.get("models"), list):
            merged["models"] = [
                deep_merge(model_defaults, m) if isinstance(m, dict) else m for m in merged["models"]
            ]
    return _annotate_secrets(merged)


def _has_path(node: Any, loc: tuple[Any, ...]) -> bool:
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            node = node[part]
        else:
            return False
    return True


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The spec class that validates the mapping at `loc`, for suggesting a misspelt key."""
    model: Any = PlatformSpec
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _model_of(info.annotation)
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


_TYPE_TAGS = ("float", "int", "str", "bool", "none", "list[", "dict[", "function-", "literal[", "lax-", "strict-")
_MODEL_NAMES = {cls.__name__ for cls in vars(spec_module).values()
                if isinstance(cls, type) and issubclass(cls, BaseModel)}


def _is_type_tag(part: Any) -> bool:
    text = str(part)
    return text.startswith(_TYPE_TAGS) or text in _MODEL_NAMES


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union-member tags pydantic puts into locations ('float', 'function-after[...]', 'Secret')."""
    return tuple(part for part in loc if isinstance(part, int) or not _is_type_tag(part))


def spec_problems(error: ValidationError, overlay: dict[str, Any], shared: dict[str, Any],
                  stack_file: Path, shared_file: Path | None) -> list[Problem]:
    """Turn pydantic's errors into located problems, one per key path, with suggestions for typos."""
    problems: dict[str, Problem] = {}
    for err in error.errors():
        loc = _clean_loc(tuple(err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        # Model-level rules name their sub-path first ("gates.minimum.x: ..."): fold it into the location.
        head, sep, rest = message.partition(": ")
        if sep and head and " " not in head and "'" not in head:
            loc = (*loc, *(int(p) if p.isdigit() else p for p in head.split(".")))
            message = rest
        if err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            names = sorted(model.model_fields) if model else []
            hint = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
            message = "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(names)}")
        elif err["type"] == "missing":
            message = "is required"
        from_shared = shared_file is not None and not _has_path(overlay, loc) and _has_path(shared, loc)
        file = shared_file if from_shared else stack_file
        path = format_path(loc)
        if path in problems:
            continue
        problems[path] = Problem(str(file), path, message)
    return list(problems.values())


def load_stack(stack: str | None = None, config_file: Path | None = None,
               project_dir: Path | None = None) -> LoadedStack:
    """Read, merge and validate a stack, by name (`stacks/Pulumi.<stack>.yaml`) or by file path."""
    project_dir = project_dir or find_project_dir()
    if config_file is None:
        if not stack:
            raise SpecError([Problem(str(project_dir / "stacks"), "", "name a stack (--stack) or a file (--config)")])
        config_file = stack_file_path(project_dir, stack)
    config_file = Path(config_file)
    if not config_file.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (project_dir / "stacks").glob("Pulumi.*.yaml"))
        message = f"no such stack file (stacks here: {', '.join(known) or 'none'})"
        raise SpecError([Problem(str(config_file), "", message)])
    stack = stack or config_file.name.removeprefix("Pulumi.").removesuffix(".yaml")

    shared_file: Path | None = project_dir / "stacks" / SHARED_SPEC
    shared: dict[str, Any] = {}
    problems: list[Problem] = []
    if shared_file.is_file():
        data, problems = _read_yaml(shared_file)
        if data is not None and not isinstance(data, dict):
            problems.append(Problem(str(shared_file), "", "the shared spec must be a mapping"))
        elif data:
            shared = data
    else:
        shared_file = None
    overlay, overlay_problems = read_overlay(config_file)
    problems += overlay_problems
    problems += [Problem(str(shared_file), path, "a Pulumi secret is encrypted per stack: set it in the stack file")
                 for path in _secure_paths(shared)]
    if problems:
        raise SpecError(problems)

    merged = with_defaults(shared, overlay)
    try:
        spec = PlatformSpec.model_validate(merged)
    except ValidationError as exc:
        raise SpecError(spec_problems(exc, overlay, shared, config_file, shared_file)) from None
    return LoadedStack(stack=stack, spec=spec, stack_file=config_file, shared_file=shared_file,
                       overlay=overlay, merged=merged)


def stack_file_schema() -> dict[str, Any]:
    """The JSON Schema of a stack file: Pulumi's layout with the spec's keys under `shipyard:`."""
    spec_schema = PlatformSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs = spec_schema.pop("$defs", {})
    properties = {f"{PROJECT}:{key}": value for key, value in spec_schema["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "shipyard stack file (stacks/Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "patternProperties": {r"^(?!shipyard:)[A-Za-z0-9_-]+:": {}},
                "additionalProperties": False,
            },
            **{key: {} for key in sorted(PULUMI_STACK_KEYS - {"config"})},
        },
        "additionalProperties": False,
        "$defs": defs,
    }
