"""Importing members with their referrer.

A member keeps the brand's id as `member_id` (backend sign-ups and purchases name members by
it; a backend sign-up of that id finds the imported member, see members/service.py) and, with
an `openid`, gets the login identity, so the member's first login lands on this member.

Graph rules are the live ones, kept the live way: a member is bound to their referrer only in
the transaction that creates them, with the referrer existing — so one referrer, no self
referral, and no cycle (see referrals/graph.py). Within a call, rows are created in waves,
referrers first, whatever their order in the file; a row whose referrer is neither stored nor
creatable in the call is rejected (`referrer_unknown`; re-send it once the referrer is in),
rows that refer round in a circle are rejected (`would_create_cycle`).

Cost: reads are BatchGetItems (members, identities); writes are one TransactWriteItems per
group of rows (≤ 100 items: member, its login identity and its downline entry per row, one
counter update per distinct referrer). A cancelled group is retried row by row, so one bad row costs only itself.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..campaigns import service as campaigns
from ..members.models import DownlineEntry, Identity, Member
from ..referrals import graph
from ..store.base import MainItem, cancelled_by_condition, cancelled_by_conflict, transaction, transient
from . import parallel, rows
from .context import Context
from .schemas import MemberRow
from ..i18n import t

MAX_ITEMS = 100  # one transaction
MAX_CONFLICTS = 8  # tries of a group that another thread's counter update or a busy engine refused


@dataclass
class NewMember:
    index: int
    member: Member
    identities: list[Identity]
    downline: DownlineEntry | None = None  # its place in the referrer's downline (bound rows)

    @property
    def items(self) -> int:
        return 1 + len(self.identities) + (self.downline is not None)


def import_members(parsed: dict[int, MemberRow], ctx: Context) -> dict[int, dict[str, Any]]:
    errors: dict[int, dict[str, Any]] = {}
    by_id = {row.member_id: index for index, row in parsed.items()}
    wanted = set(by_id) | {row.referrer_id for row in parsed.values() if row.referrer_id}
    logins = [Identity.key(row.provider, row.openid) for row in parsed.values() if row.openid]
    found = list(MainItem.batch_get([Member.key(m) for m in sorted(wanted)] + logins, consistent_read=True))
    stored = {i.member_id: i for i in found if isinstance(i, Member)}
    owners = {(i.provider, i.subject): i.member_id for i in found if isinstance(i, Identity)}
    referrer_of: dict[str, str | None] = {}
    for index, row in parsed.items():
        problem = _refusal(row, stored.get(row.member_id), owners, ctx)
        if problem is not None:
            errors[index] = problem
        elif row.member_id not in stored:
            referrer_of[row.member_id] = row.referrer_id
    order, blocked = rows.waves(referrer_of, set(stored))
    for member_id, reason in blocked.items():
        errors[by_id[member_id]] = _blocked(reason, parsed[by_id[member_id]])
    known: dict[str, Member] = dict(stored)
    for wave in order:
        new = []
        for member_id in wave:
            row = parsed[by_id[member_id]]
            if row.referrer_id and row.referrer_id not in known:  # its referrer's row was rejected
                errors[by_id[member_id]] = _blocked("referrer_unknown", row)
                continue
            new.append(_new_member(by_id[member_id], row, known.get(row.referrer_id or ""), ctx))
        for failed in parallel.each(_write_group, _groups(new)):
            errors.update(failed)
        known.update({n.member.member_id: n.member for n in new if n.index not in errors})
    return errors


def _refusal(row: MemberRow, existing: Member | None, owners: dict, ctx: Context) -> dict[str, Any] | None:
    if row.referrer_id == row.member_id:
        return rows.rejection("self_referral", t("a member cannot refer themselves"))
    if existing is not None:
        return _same_or_conflict(existing, row, ctx)
    owner = owners.get((row.provider, row.openid))
    if row.openid and owner is not None and owner != row.member_id:
        return rows.rejection("identity_taken", t("this {provider} openid already belongs to another member", provider=row.provider))
    if row.referrer_id and ctx.campaign(row.campaign_id) is None:
        return rows.rejection("campaign_not_found", t("no campaign with this id"), campaign_id=row.campaign_id)
    return None


def _same_or_conflict(existing: Member, row: MemberRow, ctx: Context) -> dict[str, Any] | None:
    """A stored member: the same row again is accepted (nothing changes); anything else is not."""
    if existing.import_hash == _digest(row, ctx):
        return None
    if existing.referrer_id and existing.referrer_id != row.referrer_id:
        return rows.rejection("already_referred", t("this member already has a referrer"), member_id=row.member_id)
    if existing.import_hash is None:
        return rows.rejection("member_exists", t("a member with this id already signed up here; an import cannot change or bind an existing member"))
    return rows.rejection("row_conflict", t("this member was imported before with other values"))


def _digest(row: MemberRow, ctx: Context) -> str:
    return rows.digest(row)


def _blocked(reason: str, row: MemberRow) -> dict[str, Any]:
    if reason == "would_create_cycle":
        return rows.rejection(reason, t("these rows refer to each other in a circle"), referrer_id=row.referrer_id)
    return rows.rejection("referrer_unknown", t("the referrer is neither a member nor created by this call; import the referrer first"),
                              referrer_id=row.referrer_id)


def _new_member(index: int, row: MemberRow, referrer: Member | None, ctx: Context) -> NewMember:
    at = row.joined_at
    member = Member.new(row.member_id, at, display_name=row.display_name or "", phone_hash=row.phone_hash,
                        source="import", import_hash=_digest(row, ctx), import_rewards=ctx.apply_rewards or None)
    downline = _bind(member, row, referrer, ctx) if referrer is not None else None
    identities = [Identity.new(row.provider, row.openid, row.member_id, at)] if row.openid else []
    return NewMember(index, member, identities, downline)


def _bind(member: Member, row: MemberRow, referrer: Member, ctx: Context) -> DownlineEntry:
    """The live binding's fields. The window runs from the referral's date, and never ends
    before a full window after the import: the referrer earns on the referee's next purchases."""
    campaign = ctx.campaign(row.campaign_id)
    days = campaigns.rules_of(campaign).attribution_window_days
    bound_at = row.referred_at or row.joined_at
    member.referrer_id, member.grandparent_id = graph.ancestors(graph.Person(referrer.member_id, referrer.referrer_id))
    member.referral_campaign_id = campaign.campaign_id
    member.referral_campaign_version = int(campaign.version)
    member.referral_channel = "import"
    member.bound_at = bound_at
    member.window_ends_at = max(graph.window_end(bound_at, days), graph.window_end(ctx.now, days))
    member.referral_status = "signed_up"
    return DownlineEntry.new(member.member_id, referrer.member_id, bound_at)


def _groups(new: list[NewMember]) -> list[list[NewMember]]:
    """Transactions of ≤ MAX_ITEMS items; a referrer's referees side by side, so its counter is
    one update per group (and rarely in two groups running at once)."""
    groups: list[list[NewMember]] = []
    size, referrers = MAX_ITEMS, set()
    for n in sorted(new, key=lambda n: (n.member.referrer_id or "", n.member.member_id)):
        referrer = n.member.referrer_id
        if size + n.items + (1 if referrer and referrer not in referrers else 0) > MAX_ITEMS:
            groups.append([])
            size, referrers = 0, set()
        needed = n.items + (1 if referrer and referrer not in referrers else 0)
        groups[-1].append(n)
        size += needed
        if referrer:
            referrers.add(referrer)
    return groups


def _write_group(group: list[NewMember]) -> dict[int, dict[str, Any]]:
    """Write the group at once; if a condition fails, row by row, each with its own reason."""
    busy: TransactWriteError | None = None
    for attempt in range(MAX_CONFLICTS):
        try:
            _transact(group)
            return {}
        except TransactWriteError as exc:
            if cancelled_by_conflict(exc) or transient(exc):
                busy = exc
                # another group moved the same referrer's counter, or the engine stayed busy past
                # botocore's retries (throttled; DynamoDB Local's lock wait under 8 threads of
                # 100-item transactions): nothing was written, or — an answer lost — the row-by-row
                # pass recognises its own rows. Wait a random while (growing) so the threads that
                # collided do not collide again.
                time.sleep(random.uniform(0, 0.02 * 2 ** attempt))
                continue
            if not cancelled_by_condition(exc):
                raise
            break
    else:
        # Still refused: the caller is told the service is busy (503 `service_busy`) and re-sends
        # the same rows, which recognise whatever was written (never a 500 for a passing reason).
        raise busy
    if len(group) > 1:
        errors: dict[int, dict[str, Any]] = {}
        for n in group:
            errors.update(_write_group([n]))
        return errors
    return _why_refused(group[0])


def _transact(group: list[NewMember]) -> None:
    with transaction() as tx:
        for referrer_id, count in Counter(n.member.referrer_id for n in group if n.member.referrer_id).items():
            tx.update(Member(*Member.key(referrer_id)), actions=[Member.referrals_signed_up.add(count)],
                      condition=Member.pk.exists())
        for n in group:
            for identity in n.identities:
                tx.save(identity, condition=Identity.pk.does_not_exist())
            tx.save(n.member, condition=Member.pk.does_not_exist())
            if n.downline is not None:
                tx.save(n.downline)


def _why_refused(n: NewMember) -> dict[int, dict[str, Any]]:
    """One row's transaction failed a condition: someone wrote the member or an identity meanwhile."""
    member = n.member
    stored = Member.find(member.member_id, consistent=True)
    if stored is not None:
        if stored.import_hash == member.import_hash:
            return {}  # the same row, written by a concurrent call
        return {n.index: rows.rejection("member_exists", t("a member with this id was created meanwhile"))}
    if member.referrer_id and Member.find(member.referrer_id, consistent=True) is None:
        return {n.index: rows.rejection("referrer_unknown", t("the referrer does not exist"),
                                        referrer_id=member.referrer_id)}
    return {n.index: rows.rejection("identity_taken", t("a login identity of this row belongs to another member"))}
