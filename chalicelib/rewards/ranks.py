"""Commission by the rank of a conversion in time, whatever order the handlers ran in.

An advocate's conversions are items under the advocate (`Conversion`, sorted by converted_at,
then referee id), written in the same transaction as the conversion itself, so a strongly
consistent query ranks them. Each one stores the rate of the level its rank reaches; every
change to the set (a conversion arriving late, moved or undone by a refund, voided by a fraud
review) re-ranks the conversions after it, and a conversion whose rate changed restates the
commission already paid on its referee's orders. Milestones follow the count the same way.
"""
from __future__ import annotations

from pynamodb.exceptions import UpdateError

from ..campaigns import service as campaigns
from ..campaigns.rules import Rules
from ..facts.models import Order
from ..members.models import Member, member_pk
from ..referrals.models import Conversion
from ..store.base import condition_failed
from . import ledger, rules
from .models import LedgerEntry

MAX_RETRIES = 8
FIRST, LAST = "CONV#", "CONV#~"  # '~' sorts after every character of a time or a member id


def levels_for(mark: Conversion) -> Rules:
    """The referral's campaign levels (the version it was bound under), else the default campaign's."""
    own = campaigns.rules_at(mark.campaign_id, mark.campaign_version) if mark.campaign_id else None
    return own if own is not None and own.advocate_levels else campaigns.rules_of(campaigns.current_or_404(None))


def rank(mark: Conversion) -> int:
    return Conversion.count(mark.pk, Conversion.sk.between(FIRST, mark.sk), consistent_read=True)


def find(key: tuple[str, str]) -> Conversion | None:
    try:
        return Conversion.get(*key, consistent_read=True)
    except Conversion.DoesNotExist:
        return None


def _store_rate(mark: Conversion, level: tuple[str | None, int]) -> bool:
    """Set the mark's rate if it still holds what was read (False: someone changed it meanwhile)."""
    name, bps = level
    condition = Conversion.pk.exists() & (Conversion.commission_bps.does_not_exist() if mark.commission_bps is None
                                          else Conversion.commission_bps == int(mark.commission_bps))
    actions = [Conversion.commission_bps.set(bps), Conversion.level.set(name) if name else Conversion.level.remove()]
    try:
        mark.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True


def _stored(mark: Conversion) -> tuple[str | None, int | None]:
    return mark.level, None if mark.commission_bps is None else int(mark.commission_bps)


def settle(key: tuple[str, str]) -> Conversion | None:
    """The conversion with the rate of its rank now (None if it was undone)."""
    for _ in range(MAX_RETRIES):
        mark = find(key)
        if mark is None:
            return None
        level = rules.rate_at_rank(levels_for(mark), rank(mark))
        if _stored(mark) == level or _store_rate(mark, level):
            mark.level, mark.commission_bps = level
            return mark
    raise RuntimeError(f"could not settle the rank of {key}: kept conflicting")


def rerank_after(mark: Conversion) -> int:
    """Give every later conversion of the advocate the rate of its rank now. A conversion whose
    rate changes is written; its own stream record then restates its commission. Returns how
    many conversions the advocate has."""
    position = Conversion.count(mark.pk, Conversion.sk.between(FIRST, mark.sk), consistent_read=True)
    for later in Conversion.query(mark.pk, Conversion.sk.between(mark.sk, LAST), consistent_read=True):
        if later.sk == mark.sk:
            continue
        position += 1
        level = rules.rate_at_rank(levels_for(later), position)
        if _stored(later) != level:
            _store_rate(later, level)  # refused: it changed meanwhile, and its own record settles it
    return position


def converting(mark: Conversion) -> tuple[str, str]:
    """The converting order of the mark's referral, as `rules.earns_commission` takes it."""
    return mark.converted_at, mark.order_id or ""


def guard_of(mark: Conversion) -> tuple:
    """A commission computed from this mark is written only while the mark still says the same:
    the same converting order (a moved or undone conversion deletes or rewrites it) and rate."""
    return Conversion, (mark.pk, mark.sk), {"commission_bps": int(mark.commission_bps or 0), "order_id": mark.order_id}


def restate_commissions(mark: Conversion, undone: bool = False) -> None:
    """Make the commission and second-level share of every order of the mark's referee in the
    attribution window what the facts earn now (`rules.earns_commission`: from the converting
    order on, at the mark's rate; refunds still apply): when the conversion moves, the orders it
    passes gain or lose theirs. `undone`: the referee converts no more, so no order earns any.
    Every write is guarded by the state it was computed from; when that changed meanwhile, the
    change's own stream record restates again, so this one stops."""
    referee = Member.get(*Member.key(mark.referee_id), consistent_read=True)
    if not referee.referrer_id:
        return
    if undone:
        conversion = None
        guard = (Member, Member.key(referee.member_id), {"referral_status": referee.referral_status})
    else:
        conversion, guard = converting(mark), guard_of(mark)
    rule_set = campaigns.rules_at(mark.campaign_id, mark.campaign_version)
    level = (mark.level, int(mark.commission_bps or 0))
    beneficiaries = [(m, rule) for m, rule in ((referee.referrer_id, "commission"),
                                               (referee.grandparent_id, "second_level")) if m]
    orders = _orders_in_window(referee)
    keys = [LedgerEntry.key(m, f"{rule}.{order.order_id}") for order in orders for m, rule in beneficiaries]
    paid = {(e.member_id, e.entry_id): e for e in LedgerEntry.batch_get(keys, consistent_read=True)} if keys else {}
    try:
        for order in orders:
            due = {}
            if not order.history and rules.earns_commission(order.occurred_at, order.order_id, conversion,
                                                            referee.bound_at, referee.window_ends_at):
                due = {grant.rule: grant for grant in rules.purchase_awards(
                    rule_set, order.order_id, int(order.amount_fen), referee.member_id, referee.referrer_id, level,
                    referee.grandparent_id)}
            for member_id, rule in beneficiaries:
                entry, grant = paid.get((member_id, f"{rule}.{order.order_id}")), due.get(rule)
                refunded, amount_fen = int(order.refunded_fen or 0), int(order.amount_fen)
                if entry is None and grant is not None:  # gained: the conversion moved to an earlier order
                    entry = ledger.award(grant, referee.referral_campaign_id, rule_set,
                                         held=referee.referral_hold == "fraud_review", guard=guard)
                    if refunded:
                        ledger.reverse_to(member_id, entry.entry_id,
                                          rules.reversal_target(int(entry.amount), refunded, amount_fen), entry=entry)
                elif entry is not None:
                    amount = grant.amount if grant is not None else 0
                    reversed_amount = rules.reversal_target(amount, refunded, amount_fen)
                    ledger.restate(member_id, entry.entry_id, amount, reversed_amount, rule_set, entry=entry,
                                   guard=guard)
    except ledger.Stale:
        return  # the conversion changed meanwhile: its own record restates with what stands then


def _orders_in_window(referee: Member) -> list[Order]:
    """The referee's orders dated inside the attribution window (only those ever earn), read
    from the items: the index copy may lag."""
    low = f"{referee.bound_at or ''}#"
    high = f"{referee.window_ends_at}#~" if referee.window_ends_at else "~"
    hits = Order.by_gsi1.query(f"ORDERS#{referee.member_id}", Order.gsi1sk.between(low, high),
                               attributes_to_get=["pk", "sk"])
    keys = [(hit.pk, hit.sk) for hit in hits]
    if not keys:
        return []
    return sorted(Order.batch_get(keys, consistent_read=True), key=lambda o: (o.occurred_at, o.order_id))


def settle_milestones(referrer_id: str, converted: int) -> None:
    """Milestones stand exactly while the advocate has that many conversions; each is tied to
    the friend whose conversion reached it, so it is held and voided with that referral. One
    that no longer stands has no such friend: it is tied to none (nor held by one)."""
    default_rules = campaigns.rules_of(campaigns.current_or_404(None))
    standing = rules.milestones_standing(default_rules, converted)
    if not standing:
        return
    keys = [LedgerEntry.key(referrer_id, f"milestone.{m}") for m in standing]
    paid = {e.entry_id: e for e in LedgerEntry.batch_get(keys, consistent_read=True)}
    reaching: list[str] = []
    for conversions, stands in standing.items():
        entry = paid.get(f"milestone.{conversions}")
        if stands:
            if not reaching:
                reaching = [mark.referee_id for mark in Conversion.query(
                    member_pk(referrer_id), Conversion.sk.between(FIRST, LAST), consistent_read=True,
                    limit=max(standing))]
            referee_id = reaching[conversions - 1]
            if entry is not None and entry.referee_id == referee_id and not entry.reversed_amount:
                continue  # standing, tied to the conversion that reached it
            held = _held(referee_id)
            bonus = next(m.bonus_points for m in default_rules.milestones if m.conversions == conversions)
            if entry is None:
                ledger.award(rules.milestone_award(referrer_id, conversions, bonus, referee_id),
                             campaigns.DEFAULT_ID, default_rules, held=held)
            else:
                ledger.restate(referrer_id, entry.entry_id, int(entry.amount), 0, default_rules,
                               referee_id=referee_id, held=held)
        elif entry is not None:
            if entry.standing > 0:
                ledger.reverse_to(referrer_id, entry.entry_id, int(entry.amount), entry=entry)
            ledger.untie(entry)


def _held(referee_id: str) -> bool:
    referee = Member.get(*Member.key(referee_id), consistent_read=True)
    return referee.referral_hold == "fraud_review"
