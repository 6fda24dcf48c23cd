"""Wiring only: blueprints for routes, and the stream and scheduled handlers.

Each capability lives in chalicelib/<capability>; this file registers what it exposes.
"""
from chalice import Chalice

from chalicelib import health, openapi, streams
from chalicelib.access import routes as access
from chalicelib.core.config import stream_arn
from chalicelib.event_sources import MAPPINGS
from chalicelib.lifecycle import handlers as _lifecycle_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.members import routes as members
from chalicelib.facts import routes as facts
from chalicelib.fraud import routes as fraud
from chalicelib.campaigns import routes as campaigns
from chalicelib.rewards import routes as rewards, sweeps
from chalicelib.rewards import handlers as _reward_handlers  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import attribution as _attribution  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import counters as _click_counters  # noqa: F401  (registers stream handlers)
from chalicelib.referrals import routes as referrals
from chalicelib.store.base import ClickItem, MainItem, bind

app = Chalice(app_name="referral-service")
bind()

for capability in (health, members, facts, fraud, campaigns, rewards, referrals, access, openapi):
    app.register_blueprint(capability.routes.blueprint)


@app.on_dynamodb_record(stream_arn=stream_arn("main"), **MAPPINGS["on_main_change"].chalice_args())
def on_main_change(event):
    return streams.process_batch("main", MainItem, event.to_dict()["Records"])


@app.on_dynamodb_record(stream_arn=stream_arn("clicks"), **MAPPINGS["on_click"].chalice_args())
def on_click(event):
    return streams.process_event("clicks", ClickItem, event.to_dict())  # keeps shardId (counters)


@app.schedule("rate(5 minutes)")
def release_matured_rewards(event):
    return {"released": sweeps.release_due()}
