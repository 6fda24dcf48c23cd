"""Wiring only: the route table, and the stream and scheduled handlers.

Each capability lives in chalicelib/<capability>; this file registers what it exposes. Every
function (API, streams, schedules) imports this file at its cold start, so routes load their
capability on first call (core/routing.py) and what only a schedule runs is imported inside it.
"""
from chalice import Chalice

from chalicelib import streams
from chalicelib.core import routing
from chalicelib.core.config import stream_arn
from chalicelib.core.methods import refuse_other_methods
from chalicelib.dryrun import handlers as _campaign_facts  # noqa: F401  (registers stream handlers)
from chalicelib.exports import handlers as _export_rows  # noqa: F401  (registers stream handlers)
from chalicelib.event_sources import FAILURE_QUEUE_PLACEHOLDER_ARN, MAPPINGS
from chalicelib.lifecycle import handlers as _lifecycle_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.leaderboards import handlers as _leaderboards  # noqa: F401  (registers stream handlers)
from chalicelib.quality import handlers as _quality  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import downline as _downline  # noqa: F401  (registers stream handlers)
from chalicelib.funnel import handlers as _funnel_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.funnel import tallies as _funnel_tallies  # noqa: F401  (registers stream handlers)
from chalicelib.engagement import checkins as _checkins, quizzes as _quizzes, shares as _shares  # noqa: F401
from chalicelib.engagement import red_packets
from chalicelib.rewards import handlers as _reward_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import attribution as _attribution  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import counters as _click_counters  # noqa: F401  (registers stream handlers)
from chalicelib.route_table import ROUTES
from chalicelib.store.base import ClickItem, MainItem, bind
from chalicelib.stream_failures import service as stream_failure_store
from chalicelib.webhooks import events as _outbound_events  # noqa: F401  (registers stream handlers)

app = Chalice(app_name="referral-service")
bind()

# Every route of every capability (chalicelib/route_table.py: path → routes module and view);
# a capability's module is imported by the first request that reaches one of its routes.
routing.register(app, ROUTES)
refuse_other_methods(app)  # after every route: the methods each path lacks answer 405


@app.on_dynamodb_record(stream_arn=stream_arn("main"), **MAPPINGS["on_main_change"].chalice_args())
def on_main_change(event):
    return streams.process_batch("main", MainItem, event.to_dict()["Records"])


@app.on_dynamodb_record(stream_arn=stream_arn("clicks"), **MAPPINGS["on_click"].chalice_args())
def on_click(event):
    return streams.process_event("clicks", ClickItem, event.to_dict())  # keeps shardId (counters)


@app.on_sqs_message(queue_arn=FAILURE_QUEUE_PLACEHOLDER_ARN, batch_size=10)
def on_stream_failure(event):
    """Batches the stream mappings gave up on (their on-failure destination): kept for re-drive."""
    return {"stored": stream_failure_store.receive(event.to_dict())}


@app.schedule("rate(5 minutes)")
def release_matured_rewards(event):
    from chalicelib.rewards import sweeps  # schedule-only (cold start: see the top of this file)

    return {"released": sweeps.release_due()}


@app.schedule("rate(5 minutes)")
def settle_expired_red_packets(event):
    return {"settled": red_packets.settle_due()}


@app.schedule("rate(15 minutes)")
def move_members_with_the_clock(event):
    """At-risk, churned, end of reactivation, tier reviews and downgrades, nudges, birthdays."""
    from chalicelib.lifecycle import sweep as lifecycle_sweep  # schedule-only

    return {"moved": lifecycle_sweep.run_due()}


@app.schedule("rate(15 minutes)")
def expire_points(event):
    """The `points_expiring` notice N days ahead, then the expiry of points past their day."""
    from chalicelib.points import expiry as points_expiry  # schedule-only

    return points_expiry.run_due()


@app.schedule("rate(1 minute)")
def deliver_webhooks(event):
    """Signed POSTs of due deliveries, each receiver on its own senders (webhooks/delivery.py)."""
    from chalicelib.webhooks import delivery as webhook_delivery  # schedule-only

    return {"delivered": webhook_delivery.send_due()}
