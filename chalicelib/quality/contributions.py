"""Facts → quality tallies, exactly (the leaderboards' Contribution pattern, per referee).

A referee's figures depend on several facts (its conversion on the member item, its orders and
their refunds), so a handler does not trust the record's image: it reads the referee's
contribution record first, then the facts (member by key; orders in the window by the member's
order index, the converting and the triggering order by key), computes what the referee
contributes now, and writes only the difference, with the record, in one transaction
conditioned on the record's revision. A handler that read older facts loses that race and
starts again, so whichever record is handled last leaves the figures of the latest facts;
redelivery and replay find nothing to change.

The orders index is eventually consistent: the record also keeps the orders it was computed
from (refunded amounts only grow, so a merge keeps the larger), and every order's own record
reads that order by key — an order the index has not shown yet is never lost. One gap remains:
an order of a referee not yet converted is skipped (handlers.order_changed), so if the index has
not shown it by the time the conversion is handled, it waits for its next change.
"""
from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from ..campaigns import service as campaigns
from ..facts.models import Order
from ..members.models import Member
from ..store.base import cancelled_by_condition, cancelled_by_conflict, condition_failed, transaction
from . import rules
from .models import TALLIES, QualityContribution

MAX_CONFLICTS = 8
UNKNOWN_CHANNEL = "unknown"  # referees bound before sign-ups kept their channel

Values = dict[str, dict[str, Any]]  # "<pk> <sk>" → {"kind": cohort|advocate, "counts": {...}}
Known = dict[str, list]  # order_id → [occurred_at, amount_fen, refunded_fen]


def in_cohort(member: Member | None) -> bool:
    return (member is not None and bool(member.referrer_id and member.referral_campaign_id)
            and member.referral_status == "converted" and bool(member.converting_order_id))


def refresh(referee_id: str, order_id: str | None = None, fence: bool = False) -> bool:
    """Make the referee contribute what its facts say now; True when anything was written.
    `fence`: write the record even when nothing changed (the referee's conversion changed:
    a handler still holding the older conversion must then fail its condition and re-read)."""
    for _ in range(MAX_CONFLICTS):
        record = _record(referee_id)
        member = Member.find(referee_id, consistent=True)
        if record is None and not in_cohort(member) and not fence:
            return False
        had_values = json.loads(record.values) if record else {}
        had_orders = json.loads(record.orders) if record else {}
        values, known = _desired(member, had_orders, order_id)
        if not fence and values == had_values and known == had_orders:
            return False
        try:
            _write(referee_id, record, had_values, values, known)
            return True
        except PutError as exc:
            if not condition_failed(exc):
                raise
        except TransactWriteError as exc:
            if not (cancelled_by_condition(exc) or cancelled_by_conflict(exc)):  # conflict: shared tallies
                raise
    raise RuntimeError(f"could not apply referee {referee_id} to the quality tallies: kept conflicting")


def _record(referee_id: str) -> QualityContribution | None:
    try:
        return QualityContribution.get(*QualityContribution.key(referee_id), consistent_read=True)
    except QualityContribution.DoesNotExist:
        return None


def _purchase(order_id: str, row: list) -> rules.Purchase:
    return rules.Purchase(order_id, row[0], int(row[1]), int(row[2]))


def _desired(member: Member | None, had_orders: Known, order_id: str | None) -> tuple[Values, Known]:
    if not in_cohort(member):
        return {}, {}
    by_key = {o.order_id: o for o in Order.batch_get(
        [Order.key(i) for i in {member.converting_order_id, order_id} if i], consistent_read=True)}
    first_order = by_key.get(member.converting_order_id)
    if first_order is None:  # the converting order cannot be missing; count nothing rather than guess
        return {}, {}
    known: Known = dict(had_orders)
    end = rules.window_end(first_order.occurred_at)
    indexed = Order.by_gsi1.query(f"ORDERS#{member.member_id}",
                                  Order.gsi1sk.between(first_order.occurred_at, f"{end}#\uffff"))
    for order in [*indexed, *by_key.values()]:
        row = [order.occurred_at, int(order.amount_fen), int(order.refunded_fen or 0)]
        if order.order_id in known:
            row[2] = max(row[2], int(known[order.order_id][2]))
        known[order.order_id] = row
    first = _purchase(first_order.order_id, known[first_order.order_id])
    known = {i: row for i, row in known.items() if rules.in_window(first, _purchase(i, row))}
    counts = rules.counts(first, [_purchase(i, row) for i, row in known.items()])
    return _targets(member, first.occurred_at, counts), known


def _targets(member: Member, first_at: str, counts: rules.Counts) -> Values:
    campaign_id = member.referral_campaign_id
    zone = campaigns.zone_of(campaign_id)
    day = rules.cohort_day(first_at, zone)
    channel = member.referral_channel or UNKNOWN_CHANNEL
    keys = {"cohort": TALLIES["cohort"].key(campaign_id, rules.shard(member.member_id), day, channel),
            "advocate": TALLIES["advocate"].key(campaign_id, member.referrer_id, day)}
    return {f"{pk} {sk}": {"kind": kind, "counts": counts} for kind, (pk, sk) in keys.items()}


def _deltas(had: Values, wanted: Values) -> dict[str, tuple[str, rules.Counts]]:
    out = {}
    for target in set(had) | set(wanted):
        kind = (wanted.get(target) or had[target])["kind"]
        new, old = (wanted.get(target) or {}).get("counts", {}), (had.get(target) or {}).get("counts", {})
        delta = {name: int(new.get(name, 0)) - int(old.get(name, 0)) for name in rules.FIELDS}
        delta = {name: step for name, step in delta.items() if step}
        if delta:
            out[target] = (kind, delta)
    return out


def _write(referee_id: str, record: QualityContribution | None, had: Values, wanted: Values, known: Known) -> None:
    rev = int(record.rev) if record else 0
    item = QualityContribution(*QualityContribution.key(referee_id), referee_id=referee_id,
                               values=json.dumps(wanted, sort_keys=True), orders=json.dumps(known, sort_keys=True),
                               rev=rev + 1)
    condition = (QualityContribution.rev == rev) if record else QualityContribution.pk.does_not_exist()
    deltas = _deltas(had, wanted)
    if not deltas:  # only the record (a fence, or the orders it knows): a plain conditional put
        item.save(condition=condition)
        return
    with transaction() as tx:
        tx.save(item, condition=condition)
        for target, (kind, delta) in deltas.items():
            model = TALLIES[kind]
            pk, sk = target.split(" ", 1)
            actions = [getattr(model, name).add(step) for name, step in delta.items()]
            tx.update(model(pk, sk), actions=[*actions, model.type.set(model)])
