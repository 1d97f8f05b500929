"""Reading a stack: the shared spec, the stack file's overlay, environment defaults, one validation.

A stack file is an ordinary Pulumi stack config (`stacks/Pulumi.<stack>.yaml`); its `shipyard:<key>`
entries overlay the project's shared spec (`stacks/shipyard.yaml`), deep-merged (`infra.merge`: mappings
merge key by key, models by name, other values replace). Then the spec is validated, and the selected
target's `check` runs over it, so `validate`, `plan` and `pulumi up` refuse the same stacks. Every problem
is reported at once, each with the file and key path it comes from; nothing is returned unless the whole
spec is valid. The target's notices (settings it does not honour) come back with the stack.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from infra import spec as spec_module
from infra.keyhints import unknown_key_message
from infra.merge import Origins, with_defaults
from infra.problems import Notice, Problem, format_path, parse_path
from infra.spec import PlatformSpec
from infra.strict_yaml import read_yaml
from infra.targets import load_target

PROJECT = "shipyard"
SHARED_SPEC = "shipyard.yaml"
#: Top-level keys Pulumi itself writes into a stack file.
PULUMI_STACK_KEYS = {"config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"}
#: Config namespaces a stack file may hold besides `shipyard:`: Pulumi's own and the providers' of every target.
PROVIDER_NAMESPACES = frozenset({"pulumi", "aws", "gcp", "azure-native", "kubernetes", "random", "docker-build"})


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
    #: Settings the target does not honour, located.
    notices: list[Notice] = field(default_factory=list)


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


def _namespace_problem(file: str, key: str, namespace: str) -> Problem:
    known = sorted({PROJECT, *PROVIDER_NAMESPACES})
    hint = difflib.get_close_matches(namespace.lower(), known, n=1, cutoff=0.6)
    extra = f"; did you mean '{hint[0]}:'?" if hint else f"; known namespaces: {', '.join(known)}"
    return Problem(file, key, f"unknown config namespace {namespace!r}: nothing reads this key{extra}")


def read_overlay(path: Path) -> tuple[dict[str, Any], list[Problem]]:
    """The `shipyard:` keys of a Pulumi stack file, without the namespace; other namespaces must be known."""
    data, problems = read_yaml(path)
    if data is None and problems:
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
        elif namespace not in PROVIDER_NAMESPACES:
            problems.append(_namespace_problem(str(path), str(key), namespace))
    return overlay, problems


def _secure_paths(node: Any, loc: tuple[Any, ...] = ()) -> list[str]:
    """Key paths of every `{secure: ...}` entry under `node`."""
    if isinstance(node, dict):
        if "secure" in node:
            return [format_path(loc)]
        return [p for k, v in node.items() for p in _secure_paths(v, (*loc, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _secure_paths(v, (*loc, i))]
    return []


def _has_path(node: Any, loc: tuple[Any, ...] | None) -> bool:
    if loc is None:
        return False
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            node = node[part]
        else:
            return False
    return True


@dataclass(frozen=True)
class Sources:
    """The two files a stack's spec comes from, and how merged paths map back onto them."""

    stack_file: Path
    shared_file: Path | None
    overlay: dict[str, Any]
    shared: dict[str, Any]
    origins: Origins

    def locate(self, loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """The file that wrote the merged path `loc`, and the path as written there.

        A path neither file holds whole is reported at the file holding its longest prefix (an environment
        default or a rule over several keys lands in the stack file, where the environment is chosen).
        """
        in_overlay, in_shared = self.origins.in_overlay(loc), self.origins.in_shared(loc)
        for depth in range(len(loc), 0, -1):
            if _has_path(self.overlay, in_overlay[:depth] if in_overlay else None):
                return str(self.stack_file), in_overlay or loc
            if self.shared_file is not None and _has_path(self.shared, in_shared[:depth] if in_shared else None):
                return str(self.shared_file), in_shared or loc
        return str(self.stack_file), in_overlay or loc

    def problem(self, loc: tuple[Any, ...], message: str) -> Problem:
        """A problem at the merged path `loc`, in the file and at the path the user wrote."""
        file, where = self.locate(loc)
        return Problem(file, format_path(where), message)

    def notice(self, notice: Notice) -> Notice:
        """`notice` (at a merged path), in the file and at the path the user wrote."""
        file, where = self.locate(parse_path(notice.path))
        return Notice(format_path(where), notice.message, file)


_TYPE_TAGS = ("float", "int", "str", "bool", "none", "list[", "dict[", "function-", "literal[", "lax-", "strict-")
_MODEL_NAMES = {cls.__name__ for cls in vars(spec_module).values()
                if isinstance(cls, type) and issubclass(cls, BaseModel)}


def _is_type_tag(part: Any) -> bool:
    text = str(part)
    return text.startswith(_TYPE_TAGS) or text in _MODEL_NAMES


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union-member tags pydantic puts into locations ('float', 'function-after[...]', 'Secret')."""
    return tuple(part for part in loc if isinstance(part, int) or not _is_type_tag(part))


def spec_problems(error: ValidationError, sources: Sources) -> list[Problem]:
    """Turn pydantic's errors into located problems, one per key path, with suggestions for typos."""
    problems: dict[str, Problem] = {}
    for err in error.errors():
        loc = _clean_loc(tuple(err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        # Model-level rules name their sub-path first ("gates.minimum.x: ..."): fold it into the location.
        head, sep, rest = message.partition(": ")
        if sep and head and " " not in head and "'" not in head:
            loc = (*loc, *parse_path(head))
            message = rest
        if err["type"] == "extra_forbidden":
            message = unknown_key_message(loc)
        elif err["type"] == "missing":
            message = "is required"
        problem = sources.problem(loc, message)
        problems.setdefault(f"{problem.file}:{problem.path}", problem)
    return list(problems.values())


def _read_shared(project_dir: Path) -> tuple[Path | None, dict[str, Any], list[Problem]]:
    shared_file = project_dir / "stacks" / SHARED_SPEC
    if not shared_file.is_file():
        return None, {}, []
    data, problems = read_yaml(shared_file)
    if data is not None and not isinstance(data, dict):
        return shared_file, {}, [*problems, Problem(str(shared_file), "", "the shared spec must be a mapping")]
    problems += [Problem(str(shared_file), path, "a Pulumi secret is encrypted per stack: set it in the stack file")
                 for path in _secure_paths(data or {})]
    return shared_file, data or {}, problems


def _stack_file(project_dir: Path, stack: str | None, config_file: Path | None) -> tuple[str, Path]:
    if config_file is None:
        if not stack:
            raise SpecError([Problem(str(project_dir / "stacks"), "", "name a stack (--stack) or a file (--config)")])
        config_file = stack_file_path(project_dir, stack)
    config_file = Path(config_file)
    if not config_file.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (project_dir / "stacks").glob("Pulumi.*.yaml"))
        message = f"no such stack file (stacks here: {', '.join(known) or 'none'})"
        raise SpecError([Problem(str(config_file), "", message)])
    return stack or config_file.name.removeprefix("Pulumi.").removesuffix(".yaml"), config_file


def load_stack(stack: str | None = None, config_file: Path | None = None,
               project_dir: Path | None = None) -> LoadedStack:
    """Read, merge and validate a stack, by name (`stacks/Pulumi.<stack>.yaml`) or by file path."""
    project_dir = project_dir or find_project_dir()
    stack, config_file = _stack_file(project_dir, stack, config_file)
    shared_file, shared, problems = _read_shared(project_dir)
    overlay, overlay_problems = read_overlay(config_file)
    problems += overlay_problems
    if any(not p.path for p in problems):  # a file that could not be read whole: nothing more to say of it
        raise SpecError(problems)
    merged, origins, merge_problems = with_defaults(shared, overlay)
    problems += [p.located(str(config_file)) for p in merge_problems]
    sources = Sources(config_file, shared_file, overlay, shared, origins)
    try:
        spec = PlatformSpec.model_validate(merged)
    except ValidationError as exc:
        raise SpecError(problems + spec_problems(exc, sources)) from None
    target = load_target(spec.target)
    problems += [sources.problem(parse_path(p.path), p.message) for p in target.check(spec)]
    if problems:
        raise SpecError(problems)
    return LoadedStack(stack=stack, spec=spec, stack_file=config_file, shared_file=shared_file,
                       overlay=overlay, merged=merged, notices=[sources.notice(n) for n in target.ignored(spec)])


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
