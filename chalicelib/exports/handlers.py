"""Stream handler that keeps the ledger's export rows (models.LedgerExportRow).

One conditional PutItem of the entry's latest exported fields per change that alters them
(creation, release, reversal, redemption; a fraud hold or index bookkeeping alone writes
nothing). The put is conditioned on the stream sequence number it copies being newer than the
row's: a redelivered record finds its own number there and writes nothing, and a record
replayed after a newer one (a re-drive from the failure store) cannot put an older state back.
"""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from ..referrals.counters import mark
from ..store.base import condition_failed
from ..streams import Change, on_change
from .models import LedgerExportRow

EXPORTED = ("entry_id", "member_id", "rule", "unit", "amount", "reversed_amount", "status", "created_at",
            "available_at", "order_id", "referee_id", "campaign_id")


def exported(entry: Any) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in EXPORTED}


@on_change("main", "ledger_entry")
def keep_export_row(change: Change) -> None:
    entry = change.new
    if entry is None or not entry.campaign_id:  # entries are never deleted; program entries have no campaign
        return
    fields = exported(entry)
    if change.old is not None and exported(change.old) == fields:
        return
    seq = mark(change.sequence)
    row = LedgerExportRow(*LedgerExportRow.key(entry.campaign_id, entry.created_at, entry.member_id, entry.entry_id),
                          seq=seq, **fields)
    try:
        row.save(condition=LedgerExportRow.pk.does_not_exist() | (LedgerExportRow.seq < seq))
    except PutError as exc:
        if not condition_failed(exc):
            raise
