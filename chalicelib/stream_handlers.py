"""The modules whose `@on_change` / `@on_batch` handlers the stream functions run.

Imported by a stream function's first batch (`streams.load_handlers`), not by `import app`:
the API and the schedules never need them (cold start). Listed in the order their handlers
ran when app.py imported them all (load_handlers keeps that order whatever imported them first); a new handler module goes here
(tests/test_foundation.py fails when one is missing), and in `BY_TABLE` too when it handles
the clicks table.
"""
from __future__ import annotations

MODULES = (
    "chalicelib.dryrun.handlers",
    "chalicelib.exports.handlers",
    "chalicelib.lifecycle.handlers",
    "chalicelib.leaderboards.handlers",
    "chalicelib.quality.handlers",
    "chalicelib.referrals.downline",
    "chalicelib.funnel.handlers",
    "chalicelib.referrals.counters",  # funnel.tallies imports it
    "chalicelib.funnel.tallies",
    "chalicelib.engagement.checkins",
    "chalicelib.engagement.quizzes",
    "chalicelib.engagement.shares",
    "chalicelib.rewards.handlers",
    "chalicelib.referrals.attribution",
    "chalicelib.webhooks.events",
)

# The clicks function (the busiest of a viral campaign) imports only what handles clicks.
# funnel.tallies imports referrals.counters itself: their handlers keep the order above.
BY_TABLE = {"clicks": ("chalicelib.referrals.counters", "chalicelib.funnel.tallies")}


def for_table(table: str | None) -> tuple[str, ...]:
    """The modules a batch of `table` needs (None: every one)."""
    return BY_TABLE.get(table, MODULES) if table else MODULES
