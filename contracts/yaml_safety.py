"""A contract file is checked as a stream of YAML events before anything builds it into objects.

Anchors and aliases are refused (a contract never needs them, and nine nested aliases of nine
make a billion-node "alias bomb" that hangs a loader); so are documents deeper or larger than any
contract. The event stream is read once, in time linear in the file's size: no alias is expanded.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_CONTRACT_BYTES = 1 << 20  # 1 MiB: the demo's contracts are ~6 KB
MAX_DEPTH = 32  # a contract nests about 7 levels deep
MAX_NODES = 100_000  # scalars, mappings and sequences together


class UnsafeYaml(ValueError):
    """The file is refused before it is built; `fix` says what to change."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def check_yaml(path: Path, loader=yaml.SafeLoader) -> bytes:
    """The file's bytes when they are safe to build; UnsafeYaml (or yaml.YAMLError) otherwise."""
    size = path.stat().st_size
    if size > MAX_CONTRACT_BYTES:
        raise UnsafeYaml(f"the file is {size} bytes, over the {MAX_CONTRACT_BYTES}-byte limit", "split it")
    raw = path.read_bytes()
    depth = nodes = 0
    for event in yaml.parse(raw, Loader=loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise UnsafeYaml(
                "uses YAML anchors or aliases (&name / *name), which contracts may not",
                "write every value out in full",
            )
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise UnsafeYaml(
                    f"has over {MAX_NODES} YAML nodes", "a contract is far smaller: check the file"
                )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise UnsafeYaml(f"nests deeper than {MAX_DEPTH} levels", "a contract nests about 7 levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return raw
