"""Compare two OpenAPI documents once every $ref is resolved: what a client would see change.

    python scripts/openapi_changes.py BEFORE.json AFTER.json

A $ref is inlined with its siblings winning, so an enum moving into components is no change. Every key of
an object in BEFORE must be in AFTER with an equal value, and lists must keep their length and order
(enum values, required fields). Keys only in AFTER are additions. Descriptions are prose, not the
contract's shape: their changes are listed apart. Exits 1 if anything but prose changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def resolve(node: Any, root: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ValueError(f"recursive {ref}")
            target: Any = root
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            merged = dict(resolve(target, root, (*seen, ref)))
            merged.update({k: resolve(v, root, seen) for k, v in node.items() if k != "$ref"})
            return merged
        return {k: resolve(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, root, seen) for v in node]
    return node


def compare(before: Any, after: Any, path: str, found: dict[str, list[str]]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            if key not in after:
                found["changes"].append(f"{path}/{key}: removed")
            else:
                compare(before[key], after[key], f"{path}/{key}", found)
        found["additions"].extend(f"{path}/{key}" for key in after if key not in before)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            compare(b, a, f"{path}[{i}]", found)
    elif before != after or type(before) is not type(after):
        kind = "prose" if path.endswith("/description") else "changes"
        found[kind].append(f"{path}: {before!r} -> {after!r}")


def main(before_path: str, after_path: str) -> int:
    before, after = (json.loads(Path(p).read_text(encoding="utf-8")) for p in (before_path, after_path))
    found: dict[str, list[str]] = {"changes": [], "prose": [], "additions": []}
    compare(resolve(before, before), resolve(after, after), "", found)
    for kind, items in found.items():
        print(f"{kind}: {len(items)}")
        for item in items[:40]:
            print(f"  {item}")
    return 1 if found["changes"] else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
