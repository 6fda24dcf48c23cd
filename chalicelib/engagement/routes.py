"""Engagement routes: check-ins, shares and assists, quizzes (API.md "Engagement"). Thin:
validate, one domain call, shape the answer."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from ..core.auth import MEMBER, OPS
from ..core.errors import Unprocessable
from ..core.http import Reply, Req, Routes
from ..core.pagination import PageQuery
from ..core.validation import Body, Id, Instant, ShortText
from ..i18n import t
from ..referrals.links import CHANNELS
from . import catalogue, checkins, quizzes, red_packets, shares

routes = Routes(__name__)

CampaignId = Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,39}$")]
Option = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                          pattern=r"[^\s\x1c-\x1f\x85]")]
OptionIndex = Annotated[int, Field(strict=True, ge=0, le=9)]


class CheckinIn(Body):
    campaign_id: CampaignId = None


class ShareIn(Body):
    campaign_id: CampaignId = None
    channel: Literal[CHANNELS]
    content_id: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9_\-.:@#/]+$")


class QuestionIn(Body):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500,
                                           pattern=r"[^\s\x1c-\x1f\x85]")]
    options: list[Option] = Field(min_length=2, max_length=10)
    answer: OptionIndex = Field(description="the index (from 0) of the right option")


class QuizIn(Body):
    campaign_id: CampaignId = None
    title: ShortText
    questions: list[QuestionIn] = Field(min_length=1, max_length=50)
    points: int = Field(strict=True, ge=0, le=100_000)
    pass_mark: int | None = Field(None, strict=True, ge=1, le=50,
                                  description="right answers needed for the points (default: all)")
    starts_at: Instant
    ends_at: Instant

    @model_validator(mode="after")
    def _ends_after_start(self) -> "QuizIn":
        if self.ends_at <= self.starts_at:  # both stored UTC text
            raise PydanticCustomError("ends_before_start", "ends_at must be after starts_at")
        return self


class QuizListQuery(PageQuery):
    campaign_id: CampaignId = None


class AnswersIn(Body):
    answers: list[OptionIndex] = Field(min_length=1, max_length=50, description="one option index per question")


@routes.post("/v1/checkins", roles=(MEMBER,), body=CheckinIn,
             summary="Daily check-in (once per day in the campaign's time zone) with streak and points")
def check_in(req: Req) -> Any:
    return checkins.check_in(req.member_id, req.body.campaign_id)


@routes.post("/v1/shares", roles=(MEMBER,), body=ShareIn, status=201,
             summary="Open a share-for-gift: friends assist it until the campaign's target")
def open_share(req: Req) -> Any:
    body: ShareIn = req.body
    return Reply(shares.open_share(req.member_id, body.campaign_id, body.channel, body.content_id), 201)


@routes.get("/v1/shares/{share_id}", rate_limit="lookup", summary="A share's progress (public)")
def share_progress(req: Req) -> Any:
    return shares.public_progress(req.params["share_id"])


@routes.post("/v1/shares/{share_id}/assists", roles=(MEMBER,),
             summary="Assist a friend's share (once per friend, never the sharer, never past the target)")
def assist(req: Req) -> Any:
    return shares.assist(req.params["share_id"], req.member_id)


@routes.post("/v1/quizzes", roles=(OPS,), body=QuizIn, status=201, summary="Define a quiz")
def create_quiz(req: Req) -> Any:
    return Reply(quizzes.create(req.body, req.principal.sub), 201)


@routes.get("/v1/quizzes", roles=(OPS,), query=QuizListQuery, summary="A campaign's quizzes, newest first")
def list_quizzes(req: Req) -> Any:
    return quizzes.list_quizzes(req.query.campaign_id, req.query)


@routes.get("/v1/quizzes/{quiz_id}", roles=(MEMBER,), summary="A quiz's questions, without their answers")
def get_quiz(req: Req) -> Any:
    return quizzes.for_member(req.params["quiz_id"])


@routes.post("/v1/quizzes/{quiz_id}/answers", roles=(MEMBER,), body=AnswersIn,
             summary="Answer a quiz: one rewarded attempt per member")
def answer_quiz(req: Req) -> Any:
    return quizzes.answer(req.params["quiz_id"], req.member_id, req.body.answers)


# -- the reward catalogue (redeemed through POST /v1/redemptions {item_id}) --------------------

CataloguePoints = Annotated[int, Field(strict=True, gt=0, le=10_000_000)]
Stock = Annotated[int, Field(strict=True, ge=0, le=10_000_000)]


class CatalogueItemIn(Body):
    item_id: Id
    name: ShortText
    points: CataloguePoints
    stock: Stock


class CatalogueChangeIn(Body):
    name: ShortText | None = None
    points: CataloguePoints | None = None
    stock: Stock | None = Field(None, description="units left, set outright (a restock or a correction)")
    active: bool | None = Field(None, strict=True, description="false withdraws the item from the catalogue")


@routes.get("/v1/catalogue", roles=(MEMBER, OPS), query=PageQuery,
            summary="Reward items on offer, with stock (ops also see withdrawn ones)")
def list_catalogue(req: Req) -> Any:
    return catalogue.list_items(req.query, active_only=not req.principal.acts_as(OPS))


@routes.post("/v1/ops/catalogue", roles=(OPS,), body=CatalogueItemIn, status=201,
             summary="Add a reward item (409 when its item_id exists); audited")
def add_catalogue_item(req: Req) -> Any:
    body: CatalogueItemIn = req.body
    return Reply(catalogue.create(body.item_id, body.name, body.points, body.stock, req.principal.sub), 201)


@routes.put("/v1/ops/catalogue/{item_id}", roles=(OPS,), body=CatalogueChangeIn,
            summary="Change a reward item's name, points, stock or offer; audited")
def change_catalogue_item(req: Req) -> Any:
    return catalogue.change(req.params["item_id"], req.body.model_dump(exclude_none=True), req.principal.sub)


# -- red packets (拼手气红包) ---------------------------------------------------------------

class RedPacketIn(Body):
    """Ops: `total_fen`, `count` and `expires_at`. Members: only `campaign_id`; the campaign's
    red-packet rule funds the packet. Which fields a role sends is checked in the route (422
    `fields_for_role`): the document is one schema for every role."""
    campaign_id: CampaignId = None
    total_fen: int | None = Field(None, strict=True, ge=1, le=100_000_00)
    count: int | None = Field(None, strict=True, ge=1, le=100)
    expires_at: Instant | None = None


@routes.post("/v1/red-packets", roles=(OPS, MEMBER), body=RedPacketIn, status=201,
             summary="Send a red packet: ops choose its total and count; a member's is funded by the campaign rule")
def send_red_packet(req: Req) -> Any:
    body: RedPacketIn = req.body
    given = {name: getattr(body, name) for name in ("total_fen", "count", "expires_at")}
    if req.principal.acts_as(OPS):
        missing = sorted(name for name, value in given.items() if value is None)
        if missing:
            raise Unprocessable(t("an ops packet needs total_fen, count and expires_at"), code="fields_for_role",
                                details={"missing": missing})
        return Reply(red_packets.create(body.campaign_id, body.total_fen, body.count, body.expires_at, None), 201)
    extra = sorted(name for name, value in given.items() if value is not None)
    if extra:
        raise Unprocessable(t("a member's packet is funded by the campaign rule: send campaign_id only"),
                            code="fields_for_role", details={"not_allowed": extra})
    return Reply(red_packets.create_for_member(req.member_id, body.campaign_id), 201)


@routes.get("/v1/red-packets/{packet_id}", rate_limit="lookup", summary="A red packet and its claims (public)")
def red_packet(req: Req) -> Any:
    return red_packets.public_view(req.params["packet_id"])


@routes.post("/v1/red-packets/{packet_id}/claims", roles=(MEMBER,), moves_money=True,
             summary="Claim a random share of a red packet: once per member, never the sender; "
                     "Idempotency-Key required")
def claim_red_packet(req: Req) -> Any:
    return red_packets.claim(req.params["packet_id"], req.member_id)
