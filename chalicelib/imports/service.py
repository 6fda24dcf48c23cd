"""One import call: parse every row with the live schemas, hand the good ones to the kind's
importer, and answer which rows were rejected and why. The call itself is audited."""
from __future__ import annotations

import uuid
from typing import Any, Callable

from ..core import clock
from ..insight import audit
from . import rows
from .codes import import_codes
from .context import Context
from .members import import_members
from .purchases import import_purchases
from .schemas import KEY_FIELD, ROW_MODELS, ImportIn

IMPORTERS: dict[str, Callable[[dict[int, Any], Context], dict[int, dict[str, Any]]]] = {
    "members": import_members, "codes": import_codes, "purchases": import_purchases}


def run(body: ImportIn, actor: str) -> dict[str, Any]:
    ctx = Context(import_id="imp_" + uuid.uuid4().hex[:20], now=clock.now_iso(), apply_rewards=body.apply_rewards)
    parsed = rows.parse(ROW_MODELS[body.kind], KEY_FIELD[body.kind], body.rows)
    errors = dict(parsed.errors)
    errors.update(IMPORTERS[body.kind](parsed.rows, ctx))
    rows.judge_repeats(parsed, errors)
    rejected = [{"row": index, "error": errors[index]} for index in sorted(errors)]
    accepted = len(body.rows) - len(rejected)
    audit.record(actor, "import", body.kind, {"import_id": ctx.import_id, "rows": len(body.rows),
                                              "accepted": accepted, "rejected": len(rejected),
                                              "apply_rewards": body.apply_rewards},
                 audit_id=ctx.import_id, at=ctx.now).save()
    return {"import_id": ctx.import_id, "kind": body.kind, "accepted": accepted, "rejected": rejected}
