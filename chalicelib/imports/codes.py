"""Importing codes (the brand's generated and vanity codes), each owned by an imported member.

A code is 4-16 of A-Z 0-9 (what `/r/{code}` resolves); a vanity code also passes the live
vanity rules (reserved and brand words, offensive words). A code is unique: its own item is
written with `attribute_not_exists`. The member's first code in a campaign becomes the code
they share; a vanity code becomes their vanity code — one active vanity code per member and
campaign, so a second one is rejected (`vanity_already_set`). Earlier codes keep resolving.

Cost: BatchGetItems for the codes, members and the members' code pointers; one conditional
PutItem for the code and, when the member's pointer changes, one for the pointer (≈ 2 WRU).
Not one transaction: each step is conditional and a re-sent row finishes what a failed call
left half done (the code is there, its pointer not yet), so the end state is the same. A
member's rows run in turn (they share the pointer); different members' side by side.
"""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from ..members.models import Member
from ..referrals import reserved, rules as code_rules
from ..referrals.models import Code, MemberCode
from ..store.base import MainItem, condition_failed, patiently
from . import parallel, rows
from .context import Context
from .schemas import CodeRow
from ..i18n import t


def normalized(row: CodeRow, extra_reserved: frozenset[str]) -> tuple[str | None, dict[str, Any] | None]:
    """(the canonical code, or the rejection) under the live rules."""
    if row.vanity:
        try:
            return code_rules.normalize_vanity(row.code, extra_reserved), None
        except code_rules.VanityRejected as exc:
            return None, rows.rejection(f"vanity_{exc.reason}", str(exc), field="code")
    code = code_rules.normalize_code(row.code)
    if code is None:
        return None, rows.rejection("code_format", t("a code is 4 to 16 letters A-Z or digits 0-9"), field="code")
    if code_rules.is_offensive(code):
        return None, rows.rejection("code_offensive", t("that code is not allowed"), field="code")
    return code, None


def import_codes(parsed: dict[int, CodeRow], ctx: Context) -> dict[int, dict[str, Any]]:
    errors: dict[int, dict[str, Any]] = {}
    extra = reserved.extra_words()
    codes: dict[int, str] = {}
    for index, row in parsed.items():
        code, problem = normalized(row, extra)
        if problem:
            errors[index] = problem
        elif ctx.campaign(row.campaign_id) is None:
            errors[index] = rows.rejection("campaign_not_found", t("no campaign with this id"), campaign_id=row.campaign_id)
        else:
            codes[index] = code
    keys = [Code.key(c) for c in codes.values()]
    keys += [Member.key(m) for m in {parsed[i].member_id for i in codes}]
    keys += [MemberCode.key(m, c) for m, c in {(parsed[i].member_id, _campaign(parsed[i], ctx)) for i in codes}]
    found = list(MainItem.batch_get(keys, consistent_read=True))
    stored = {i.code: i for i in found if isinstance(i, Code)}
    members = {i.member_id for i in found if isinstance(i, Member)}
    pointers = {(i.member_id, i.campaign_id): i for i in found if isinstance(i, MemberCode)}
    by_member: dict[str, list[int]] = {}
    for index, code in codes.items():
        row = parsed[index]
        if code in stored and stored[code].import_hash != _digest(row, code, ctx):
            errors[index] = rows.rejection("code_taken", t("the code {code} is taken (or was imported with other values)", code=code))
        elif code in stored and _pointed(pointers.get((row.member_id, _campaign(row, ctx))), row, code):
            continue  # imported before, pointer included: nothing to do
        elif row.member_id not in members:
            errors[index] = rows.rejection("member_not_found", t("member {member_id!r} does not exist", member_id=row.member_id))
        else:
            by_member.setdefault(row.member_id, []).append(index)

    def one_member(indices: list[int]) -> dict[int, dict[str, Any]]:
        failed = {}
        for index in indices:
            problem = _write(parsed[index], codes[index], pointers, ctx)
            if problem:
                failed[index] = problem
        return failed

    for failed in parallel.each(one_member, list(by_member.values())):
        errors.update(failed)
    return errors


def _campaign(row: CodeRow, ctx: Context) -> str:
    return ctx.campaign(row.campaign_id).campaign_id


def _digest(row: CodeRow, code: str, ctx: Context) -> str:
    return rows.digest(row, code=code, campaign_id=_campaign(row, ctx))


def _pointed(pointer: MemberCode | None, row: CodeRow, code: str) -> bool:
    """Whether the member's pointer already says what this row made it say."""
    if pointer is None:
        return False
    return not row.vanity or pointer.vanity_code == code


def _write(row: CodeRow, code: str, pointers: dict, ctx: Context) -> dict[str, Any] | None:
    campaign_id = _campaign(row, ctx)
    at = row.created_at or ctx.now
    pointer = pointers.get((row.member_id, campaign_id))
    if row.vanity and pointer is not None and pointer.vanity_code and pointer.vanity_code != code:
        return rows.rejection("vanity_already_set", t("this member already has a vanity code in this campaign"),
                              vanity_code=pointer.vanity_code)
    item = Code(*Code.key(code), code=code, member_id=row.member_id, campaign_id=campaign_id,
                kind="vanity" if row.vanity else "generated", created_at=at, import_hash=_digest(row, code, ctx))
    new_pointer = None
    if pointer is None or row.vanity:
        new_pointer = MemberCode(*MemberCode.key(row.member_id, campaign_id), member_id=row.member_id,
                                 campaign_id=campaign_id, code=code, updated_at=at,
                                 vanity_code=code if row.vanity else None)
    try:
        patiently(lambda: item.save(condition=Code.pk.does_not_exist()))
    except PutError as exc:
        if not condition_failed(exc):
            raise
        stored = Code.get(*Code.key(code), consistent_read=True)
        if stored.import_hash != item.import_hash:  # else: this row, imported before (a resumed call)
            return rows.rejection("code_taken", t("the code {code} was taken meanwhile", code=code))
    if new_pointer is not None:
        try:
            patiently(lambda: new_pointer.save(condition=(MemberCode.updated_at == pointer.updated_at) if pointer
                                               else MemberCode.pk.does_not_exist()))
        except PutError as exc:
            if not condition_failed(exc):
                raise
            if not _own_pointer(new_pointer):
                return rows.rejection("code_changed", t("the member's code changed meanwhile; send the row again"))
    if new_pointer is not None:
        pointers[(row.member_id, campaign_id)] = new_pointer
    return None


def _own_pointer(written: MemberCode) -> bool:
    """A pointer put refused by its condition may have met its own earlier try (an answer lost
    after the write, the put re-sent): then the stored pointer says exactly what this row wrote."""
    try:
        stored = MemberCode.get(written.pk, written.sk, consistent_read=True)
    except MemberCode.DoesNotExist:
        return False
    return (stored.code, stored.vanity_code, stored.updated_at) == (written.code, written.vanity_code, written.updated_at)
