"""The dry run's body: rules under edit (optional), and either facts to play or a period."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from ..campaigns.rules import Rules
from ..core.validation import AmountFen, Body, Id, Instant, PositiveFen
from ..members.schemas import ReferralIn

MAX_GIVEN_FACTS = 500  # the 64 KB body limit binds first, at a few hundred


class SignupFact(Body):
    kind: Literal["signup"]
    member_id: Id
    referral: ReferralIn | None = Field(None, description="the code the member signed up with")
    referrer_id: Id | None = Field(None, description="or the referrer directly (what-ifs without codes)")
    occurred_at: Instant


class PurchaseFact(Body):
    kind: Literal["purchase"]
    order_id: Id
    member_id: Id
    amount_fen: AmountFen
    occurred_at: Instant


class RefundFact(Body):
    kind: Literal["refund"]
    order_id: Id
    refund_id: Id
    amount_fen: PositiveFen
    occurred_at: Instant


GivenFact = Annotated[Union[SignupFact, PurchaseFact, RefundFact], Field(discriminator="kind")]


class DryRunIn(Body):
    rules: Rules | None = Field(None, description="the rules under edit, validated as PUT /v1/campaigns/{id} "
                                                  "does (default: the rules each fact is judged by now)")
    facts: list[GivenFact] | None = Field(None, max_length=MAX_GIVEN_FACTS,
                                          description="facts to play from an empty state; leave out to replay "
                                                      "the campaign's recorded facts of [from, to)")
    from_: Instant | None = Field(None, alias="from", description="start of the recorded period (default: 30 "
                                                                  "days before `to`)")
    to: Instant | None = Field(None, description="end of the recorded period, exclusive (default: now)")
