"""Regenerate `ROUTES` in chalicelib/route_table.py from the decorators of the routes modules
it lists in `CAPABILITIES` (after adding, removing or renaming a route):

    python -m tools.route_table          # rewrite the table
    python -m tools.route_table check    # exit 1 if the table differs from the decorators

tests/test_route_table.py runs the check.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "chalicelib" / "route_table.py"
START = "ROUTES = (\n"


def declared(capabilities: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    """(method, path, module, function) of every route the capabilities' decorators declare."""
    rows = []
    for module in capabilities:
        routes = importlib.import_module(module).routes
        rows += [(method, path, module, function) for method, path, function in routes.table]
    return rows


def render(rows: list[tuple[str, str, str, str]]) -> str:
    width = max(len(repr(method) + repr(path)) for method, path, _, _ in rows) + 3
    lines = [f"    ({f'{method!r}, {path!r},':<{width}} {module!r}, {function!r}),\n"
             for method, path, module, function in rows]
    return START + "".join(lines) + ")\n"


def main(argv: list[str]) -> int:
    os.environ.setdefault("STAGE", "local")
    from chalicelib import route_table

    text = TABLE.read_text()
    head = text[: text.index(START)]
    fresh = head + render(declared(route_table.CAPABILITIES))
    if argv[:1] == ["check"]:
        if fresh != text:
            print("chalicelib/route_table.py differs from the routes' decorators: run python -m tools.route_table")
            return 1
        return 0
    TABLE.write_text(fresh)
    print(f"wrote {TABLE.relative_to(TABLE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
