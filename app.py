"""Wiring only: blueprints for routes, and the stream and scheduled handlers.

Each capability lives in chalicelib/<capability>; this file registers what it exposes. Every
function (API, streams, schedules) imports this file at its cold start, so what only a schedule
runs is imported inside it.
"""
from chalice import Chalice

from chalicelib import health, openapi, streams
from chalicelib.access import routes as access
from chalicelib.core.config import stream_arn
from chalicelib.core.methods import refuse_other_methods
from chalicelib.dryrun import handlers as _campaign_facts  # noqa: F401  (registers stream handlers)
from chalicelib.dryrun import routes as dryrun
from chalicelib.exports import handlers as _export_rows  # noqa: F401  (registers stream handlers)
from chalicelib.exports import routes as exports
from chalicelib.event_sources import FAILURE_QUEUE_PLACEHOLDER_ARN, MAPPINGS
from chalicelib.lifecycle import handlers as _lifecycle_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.leaderboards import handlers as _leaderboards  # noqa: F401  (registers stream handlers)
from chalicelib.leaderboards import routes as leaderboards
from chalicelib.quality import handlers as _quality  # noqa: F401  (registers stream handlers)
from chalicelib.quality import routes as quality
from chalicelib.members import routes as members
from chalicelib.member360 import routes as member360
from chalicelib.privacy import routes as privacy
from chalicelib.program import routes as program
from chalicelib.facts import routes as facts
from chalicelib.funnel import handlers as _funnel_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.funnel import tallies as _funnel_tallies  # noqa: F401  (registers stream handlers)
from chalicelib.funnel import routes as funnel
from chalicelib.imports import routes as imports
from chalicelib.fraud import routes as fraud
from chalicelib.campaigns import routes as campaigns
from chalicelib.engagement import red_packets, routes as engagement  # also registers its stream handlers
from chalicelib.rewards import routes as rewards
from chalicelib.rewards import handlers as _reward_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import attribution as _attribution  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import counters as _click_counters  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import downline as _downline  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import routes as referrals
from chalicelib.share import routes as share
from chalicelib.store.base import ClickItem, MainItem, bind
from chalicelib.stream_failures import routes as stream_failures, service as stream_failure_store
from chalicelib.webhooks import routes as webhooks
from chalicelib.webhooks import events as _outbound_events  # noqa: F401  (registers stream handlers)

app = Chalice(app_name="referral-service")
bind()

for capability in (health, members, program, facts, fraud, campaigns, rewards, referrals, access, stream_failures, engagement,
                   webhooks, leaderboards, exports, member360, quality, funnel, dryrun, privacy, share, imports,
                   openapi):
    app.register_blueprint(capability.routes.blueprint)
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
