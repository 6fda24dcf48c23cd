"""The app's routes, registered at import from a table (chalicelib/route_table.py) with thin
views that import their capability's routes module on its first call (cold start: issue #18).

Chalice needs every route registered when `app.py` is imported; the capability behind it
(its schemas, services, models, pydantic and PynamoDB themselves) is needed only when a
request reaches it. Each table row names the routes module and the view function, so a route
is found by its path in the table or in its module's decorators, which stay as they were.
The table is generated from those decorators (`python -m tools.route_table`) and
tests/test_route_table.py fails when the two differ.
"""
from typing import Any, Callable

JSON_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]


def register(app: Any, table: tuple[tuple[str, str, str, str], ...]) -> None:
    """One thin view per (method, path, module, function) row; the module loads on first call."""
    for method, path, module, function in table:
        app.route(path, methods=[method], content_types=JSON_TYPES, name=f"{module}.{function}")(
            _thin_view(app, method, path, module, function))


def _thin_view(app: Any, method: str, path: str, module: str, function: str) -> Callable[..., Any]:
    def view(**params: str) -> Any:
        routes = __import__(module, fromlist=("routes",)).routes  # the module itself, not its package
        return routes.dispatch(app, method, path, params)

    view.__name__ = function
    view.__qualname__ = f"{module}.{function}"
    return view


def modules(table: tuple[tuple[str, str, str, str], ...]) -> list[str]:
    """The routes modules of a table, in its order, each once."""
    return list(dict.fromkeys(row[2] for row in table))


def load_all() -> None:
    """Import every routes module of the table (the OpenAPI document describes them all)."""
    from ..route_table import ROUTES

    for module in modules(ROUTES):
        __import__(module)
