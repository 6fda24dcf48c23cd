"""Fire the handlers registered with `@app.schedule` on a timer, locally.

The interval comes from the schedule expression (`rate(5 minutes)`, `cron(...)` → hourly) or,
for demos, from SCHEDULE_INTERVAL_SECONDS, which overrides every schedule.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Any

from chalice.app import ScheduledEventConfig

from chalicelib.core.logs import get_logger

log = get_logger("local.scheduler")

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def interval_of(expression: Any, override: float | None = None) -> float:
    if override:
        return override
    text = expression if isinstance(expression, str) else expression.to_string()
    match = re.fullmatch(r"rate\((\d+) (\w+)\)", text.strip())
    if match:
        return int(match.group(1)) * _UNITS[match.group(2)]
    return 3600.0


def scheduled_event(name: str) -> dict:
    return {"version": "0", "id": f"local-{time.time_ns()}", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "000000000000",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "local",
            "resources": [f"arn:aws:events:local:000000000000:rule/{name}"], "detail": {}}


def schedules(app: Any) -> list[ScheduledEventConfig]:
    return [s for s in app.event_sources if isinstance(s, ScheduledEventConfig)]


def run(app: Any, stop: threading.Event, override: float | None = None) -> None:
    due = {s.name: time.monotonic() + interval_of(s.schedule_expression, override) for s in schedules(app)}
    by_name = {s.name: s for s in schedules(app)}
    while not stop.is_set():
        now = time.monotonic()
        for name, at in due.items():
            if now >= at:
                try:
                    app.handler_map[name](scheduled_event(name), None)
                    log.info("scheduled handler ran", extra={"function": name})
                except Exception:
                    log.exception("scheduled handler failed", extra={"function": name})
                due[name] = now + interval_of(by_name[name].schedule_expression, override)
        stop.wait(0.5)
