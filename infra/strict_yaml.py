"""Reading YAML as strictly as a spec deserves: a key given twice in one mapping is a problem, not a
silent "last one wins" (which would drop a whole `shipyard:registry:` block)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.problems import Problem


class _DuplicateKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, recording every key that repeats within one mapping."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                self.duplicates.append((str(key), seen[key], line))
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_DuplicateKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _DuplicateKeyLoader.construct_mapping)


def parse_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """The document in `text`, and a located problem per duplicate key or syntax error."""
    loader = _DuplicateKeyLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return None, [Problem(file, "", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")]
    finally:
        loader.dispose()
    problems = [Problem(file, key, f"is given twice in one mapping (lines {first} and {second}); YAML would keep "
                                   "only the last one: merge them into one entry")
                for key, first, second in loader.duplicates]
    return data, problems


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """The YAML document at `path`, and its problems (unreadable, invalid, duplicate keys)."""
    try:
        text = path.read_text()
    except OSError as exc:
        return None, [Problem(str(path), "", f"cannot read: {exc.strerror or exc}")]
    return parse_yaml(text, str(path))
