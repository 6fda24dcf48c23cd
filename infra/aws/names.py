"""Deployed names, one definition for the template and the IAM policy.

Table names follow the stage's `TABLE_PREFIX` in `.chalice/config.json` (what the functions
read), queues and secrets are namespaced by stage so one account can hold dev and prod.
"""
from __future__ import annotations

import json
from pathlib import Path

from chalicelib.event_sources import FAILURE_QUEUE_NAME

ROOT = Path(__file__).resolve().parents[2]
SCHEDULE_FAILURE_QUEUE = "schedule-failures"


def chalice_config() -> dict:
    return json.loads((ROOT / ".chalice" / "config.json").read_text())


def stage_environment(stage: str) -> dict[str, str]:
    config = chalice_config()
    return {**config.get("environment_variables", {}),
            **config["stages"][stage].get("environment_variables", {})}


def table_prefix(stage: str) -> str:
    return stage_environment(stage).get("TABLE_PREFIX", f"referral-{stage}-")


def table_name(stage: str, logical: str) -> str:
    return table_prefix(stage) + logical


def stream_failure_queue(stage: str) -> str:
    return f"referral-{stage}-{FAILURE_QUEUE_NAME}"


def schedule_failure_queue(stage: str) -> str:
    return f"referral-{stage}-{SCHEDULE_FAILURE_QUEUE}"


def secret_prefix(stage: str) -> str:
    """Secrets Manager names and SSM parameter paths the functions may read."""
    return f"referral/{stage}/"
