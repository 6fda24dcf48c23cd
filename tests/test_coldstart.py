"""Cold start: every Lambda function (API, streams, schedules) imports app.py, so what only some
routes or one schedule need must not load with it (BENCHMARKS.md, "Cold start"). Routes load
their capability on first call (chalicelib/route_table.py), stream handlers on the first batch."""
import os
import subprocess
import sys
from pathlib import Path

from chalicelib.route_table import ROUTES
from chalicelib.stream_handlers import MODULES as STREAM_HANDLERS

ROOT = Path(__file__).resolve().parents[1]

# Each is imported where it is used: posters (Pillow), hosted pages (Jinja2), QR codes (segno),
# tokens (PyJWT, which loads `cryptography` when installed), boto3 clients, the dry-run replay,
# the bulk importers, and what only a schedule runs.
LAZY = ("PIL", "jinja2", "segno", "jwt", "cryptography", "boto3", "chalicelib.dryrun.simulate",
        "chalicelib.imports.service", "chalicelib.lifecycle.sweep", "chalicelib.points.expiry",
        "chalicelib.rewards.sweeps", "chalicelib.webhooks.delivery",
        # No capability at all: its routes, schemas, models and stream handlers, and the libraries
        # only they use (validation, storage, AWS).
        "pydantic", "pynamodb", "botocore", "chalicelib.streams", "chalicelib.store.base", "chalicelib.core.http",
        *dict.fromkeys(row[2] for row in ROUTES), *STREAM_HANDLERS)


def in_a_fresh_interpreter(script: str, *args: str) -> str:
    """What `script` prints in a new Python process (a cold start), run from the repository."""
    env = {**os.environ, "STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout


def test_import_app_leaves_what_only_some_routes_or_schedules_need():
    script = f"import sys, app; print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    loaded = in_a_fresh_interpreter(script).split()
    assert loaded == []


def test_import_app_builds_no_request_validator():
    """Schemas are built on first use (pydantic `defer_build`), not by importing the app."""
    script = ("import app\nfrom pydantic import BaseModel\n"
              "def every(cls):\n    for sub in cls.__subclasses__():\n        yield sub\n        yield from every(sub)\n"
              "print(' '.join(sorted({m.__module__ + '.' + m.__qualname__ for m in every(BaseModel)\n"
              "                       if m.__module__.startswith('chalicelib') and m.__pydantic_complete__})))")
    built = in_a_fresh_interpreter(script).split()
    assert built == []


def test_a_first_request_loads_only_the_capability_it_reaches():
    """Unauthenticated, so no table is read: the answer is the envelope's 401, and only the
    members routes (not, say, exports or the stream handlers) were imported for it."""
    script = ("import sys, json, app\nfrom chalice.test import Client\n"
              "with Client(app.app, stage_name='local') as client:\n"
              "    r = client.http.get('/v1/members/me')\n"
              "print(r.status_code, json.loads(r.body)['error']['code'])\n"
              "print(' '.join(m for m in ('chalicelib.members.routes', 'chalicelib.exports.routes',"
              " 'chalicelib.rewards.handlers') if m in sys.modules))")
    answer, loaded = in_a_fresh_interpreter(script).splitlines()
    assert answer == "401 missing_token"
    assert loaded == "chalicelib.members.routes"


def test_the_clicks_function_loads_only_the_click_handlers():
    """The clicks stream's first batch registers its handlers without importing the main
    table's (rewards, lifecycle, webhooks, …): the busiest function starts lightest."""
    script = ("import sys, app\nfrom chalicelib import streams\nfrom chalicelib.store.base import ClickItem\n"
              "streams.run_records('clicks', ClickItem, [])\n"
              "print(' '.join(f.__name__ for f in streams._batch_handlers[('clicks', 'click')]))\n"
              "print(' '.join(m for m in ('chalicelib.rewards.handlers', 'chalicelib.lifecycle.handlers',"
              " 'chalicelib.webhooks.events') if m in sys.modules))")
    lines = in_a_fresh_interpreter(script).splitlines()
    assert lines[0] == "count_clicks tally_clicks"
    assert lines[1:] in ([], [""])


def test_stream_handlers_run_in_one_order_whatever_loaded_first():
    """Routes modules import some handler modules: a request served before the first batch
    must not change the order the handlers run in (the stream's work, e.g. its reads, follows it)."""
    script = ("import sys, app\nfrom chalicelib import streams\nfor m in sys.argv[1:]: __import__(m)\n"
              "streams.load_handlers()\n"
              "for reg in (streams._handlers, streams._batch_handlers):\n"
              "    for (table, kind), hs in reg.items(): print(table, kind, [f.__module__ + f.__name__ for f in hs])")

    def order(*first: str) -> list[str]:
        return in_a_fresh_interpreter(script, *first).splitlines()

    assert order("chalicelib.facts.routes", "chalicelib.members.routes", "chalicelib.engagement.routes") == order()
