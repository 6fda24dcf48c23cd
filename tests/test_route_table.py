"""The app serves its routes from chalicelib/route_table.py (each loads its module on first call):
the table must say exactly what the routes modules' decorators declare."""
from __future__ import annotations

from chalicelib.core.methods import is_refusal
from chalicelib.route_table import CAPABILITIES, ROUTES
from tools import route_table


def test_the_table_is_what_the_decorators_declare():
    assert route_table.declared(CAPABILITIES) == list(ROUTES), "run python -m tools.route_table"


def test_the_app_serves_every_row_of_the_table_and_nothing_else(app):
    served = {(method, path) for path, methods in app.routes.items() for method, entry in methods.items()
              if not is_refusal(entry) and not path.startswith("/test/")}  # tests/conftest.py's with_test_routes
    assert served == {(method, path) for method, path, _, _ in ROUTES}
