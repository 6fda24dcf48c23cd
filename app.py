"""Wiring only: the route table, and the stream and scheduled handlers.

Each capability lives in chalicelib/<capability>; this file registers what it exposes. Every
function (API, streams, schedules) imports this file at its cold start, so each imports here
only what registration needs: routes load their capability on first call (core/routing.py),
stream handlers on the first batch (chalicelib/stream_handlers.py), and a schedule what it
runs inside it.
"""
from chalice import Chalice

from chalicelib.core import routing
from chalicelib.core.methods import refuse_other_methods
from chalicelib.event_sources import FAILURE_QUEUE_PLACEHOLDER_ARN, MAPPINGS, stream_arn
from chalicelib.route_table import ROUTES

app = Chalice(app_name="referral-service")

# Every route of every capability (chalicelib/route_table.py: path → routes module and view);
# a capability's module is imported by the first request that reaches one of its routes.
routing.register(app, ROUTES)
refuse_other_methods(app)  # after every route: the methods each path lacks answer 405

@app.on_dynamodb_record(stream_arn=stream_arn("main"), **MAPPINGS["on_main_change"].chalice_args())
def on_main_change(event):
    from chalicelib import streams  # its first batch imports the handler modules
    from chalicelib.store.base import MainItem

    return streams.process_batch("main", MainItem, event.to_dict()["Records"])


@app.on_dynamodb_record(stream_arn=stream_arn("clicks"), **MAPPINGS["on_click"].chalice_args())
def on_click(event):
    from chalicelib import streams
    from chalicelib.store.base import ClickItem

    return streams.process_event("clicks", ClickItem, event.to_dict())  # keeps shardId (counters)


@app.on_sqs_message(queue_arn=FAILURE_QUEUE_PLACEHOLDER_ARN, batch_size=10)
def on_stream_failure(event):
    """Batches the stream mappings gave up on (their on-failure destination): kept for re-drive."""
    from chalicelib.stream_failures import service as stream_failure_store

    return {"stored": stream_failure_store.receive(event.to_dict())}


@app.schedule("rate(5 minutes)")
def release_matured_rewards(event):
    from chalicelib.rewards import sweeps  # schedule-only (cold start: see the top of this file)

    return {"released": sweeps.release_due()}


@app.schedule("rate(5 minutes)")
def settle_expired_red_packets(event):
    from chalicelib.engagement import red_packets

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
