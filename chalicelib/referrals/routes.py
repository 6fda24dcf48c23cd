"""Codes, links, clicks and QR codes (API.md, "Codes, links, clicks"). Thin: validate, one
domain call, shape the answer."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from chalice import Response
from pydantic import Field, field_validator

from ..core.auth import MEMBER, OPS
from ..core.http import Reply, Req, Routes
from ..core.config import settings
from ..core.validation import Body, Query
from ..share import crawlers, pages
from ..share import poster  # Pillow itself loads on the first poster (cold start)
from . import clicks, codes, links, reserved
from .links import CHANNELS

routes = Routes(__name__)

CampaignId = Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,39}$")]
Channel = Literal[CHANNELS]  # the API.md list, kept once in links.py


class CodeQuery(Query):
    campaign_id: CampaignId = None


class VanityIn(Body):
    code: str = Field(max_length=64)  # the rules (4–16 of A–Z 0–9) answer with their own 422 codes
    campaign_id: CampaignId = None


class LinkIn(Body):
    campaign_id: CampaignId = None
    channel: Channel
    landing_path: str | None = Field(None, max_length=500, description="a path on the campaign's site, e.g. /p/42",
                                     json_schema_extra={"pattern": links.LANDING_PATH.pattern})

    @field_validator("landing_path")
    @classmethod
    def _on_site(cls, value: str | None) -> str | None:
        if value is not None and not links.LANDING_PATH.fullmatch(value):
            raise ValueError("must be a path on the campaign's site, like /products/42")
        return value


class ReservedIn(Body):
    words: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]{3,16}$")]] = Field(min_length=1, max_length=100)


class QrQuery(Query):
    scale: int = Field(8, ge=2, le=32)  # pixels per module: 8 suits screens, 20+ print posters


class ClickQuery(Query):
    l: str | None = None  # noqa: E741  (the link id, short in shared URLs; junk is ignored, never a 422)


def _my_code(member_code) -> dict[str, Any]:
    return {"code": member_code.code, "campaign_id": member_code.campaign_id,
            "url": links.share_url(member_code.code)}


@routes.get("/v1/members/me/code", roles=(MEMBER,), query=CodeQuery,
            summary="My stable referral code for a campaign (created on first call) and its share URL")
def my_code(req: Req) -> Any:
    return _my_code(codes.code_for(req.member_id, req.query.campaign_id))


@routes.put("/v1/members/me/code", roles=(MEMBER,), body=VanityIn,
            summary="Choose a vanity code (4–16 of A–Z 0–9); my older codes keep working")
def set_my_code(req: Req) -> Any:
    return _my_code(codes.set_vanity(req.member_id, req.body.code, req.body.campaign_id))


@routes.post("/v1/links", roles=(MEMBER,), body=LinkIn, status=201,
             summary="Create a share link for a channel, with its QR code URL")
def create_link(req: Req) -> Any:
    body: LinkIn = req.body
    link = links.create(req.member_id, body.channel, body.campaign_id, body.landing_path,
                        request_key=req.headers.get("idempotency-key"))
    return Reply(links.public(link), 201)


@routes.get("/v1/links/{link_id}", roles=(MEMBER,),
            summary="One of my share links with its share texts (title, description, text) for its channel, "
                    "in my language, the campaign's offer filled in")
def my_link(req: Req) -> Any:
    from ..share import link_view  # deferred: share texts are this route's alone (cold start)

    return link_view.own_link(req.member_id, req.params["link_id"])


@routes.get("/v1/links/{link_id}/qr.png", query=QrQuery, rate_limit="qr", produces="image/png",
            summary="QR code (PNG) of a share link's URL; send Accept: image/png (or */*)")
def link_qr(req: Req) -> Any:
    link = links.get(req.params["link_id"])
    # A link's URL never changes, so the image may be cached by anyone for as long as they like.
    return Response(body=links.qr_png(link.url, req.query.scale), status_code=200,
                    headers={"Content-Type": "image/png",
                             "Cache-Control": "public, max-age=31536000, immutable"})


@routes.get("/v1/links/{link_id}/poster.png", rate_limit="poster", produces="image/png",
            headers={"ETag": "changes with the campaign version and the advocate's name; send it as If-None-Match"},
            summary="Share poster (PNG, 750×1334): campaign background, masked advocate name, offer and the "
                    "link's QR code; send Accept: image/png (or */*); If-None-Match → 304")
def link_poster(req: Req) -> Any:
    inputs = poster.inputs_for(req.params["link_id"])
    # Revalidation is cheap (two reads, no drawing), so caches keep it briefly: an offer change
    # reaches viewers within MAX_AGE_SECONDS.
    headers = {"ETag": inputs.etag, "Cache-Control": f"public, max-age={poster.MAX_AGE_SECONDS}"}
    if poster.matches(req.headers.get("if-none-match"), inputs.etag):
        return Response(body="", status_code=304, headers=headers)
    return Response(body=poster.png_for(inputs), status_code=200, headers={"Content-Type": "image/png", **headers})


@routes.get("/r/{code}", query=ClickQuery, produces="text/plain", status=302,
            summary="Record a click and redirect (302) to the campaign's landing page with ref and click, or answer "
                    "with the campaign's hosted landing page (200 text/html); link-preview crawlers get the "
                    "preview card (200 text/html) and are never counted; never 429")
def follow(req: Req) -> Any:
    code, link_id = req.params["code"], req.query.l
    user_agent = req.headers.get("user-agent", "")
    if crawlers.is_crawler(user_agent):
        return pages.preview(code, link_id, req.headers.get("if-none-match"))
    outcome = clicks.record(code, link_id, req.client_key, user_agent)
    if pages.is_hosted(outcome.target):
        return pages.landing_page(outcome)
    return _redirect(outcome.location)


@routes.route("/r/{code}", "HEAD", query=ClickQuery, produces="text/plain", status=302,
              summary="What GET answers for the same agent, headers only, never counted (link checkers, crawlers)")
def follow_head(req: Req) -> Any:
    code, link_id = req.params["code"], req.query.l
    if crawlers.is_crawler(req.headers.get("user-agent", "")):
        return pages.preview(code, link_id, req.headers.get("if-none-match"), head=True)
    target = clicks.resolve(code, link_id)
    if pages.is_hosted(target):
        assert target is not None
        return pages.landing_page(clicks.Outcome(_uncounted(target), None, target), head=True)
    return _redirect(_uncounted(target) if target else settings().default_landing_url)


def _uncounted(target: clicks.Target) -> str:
    return links.landing(target.campaign.landing_url, target.link.landing_path if target.link else None,
                         ref=target.code.code)


def _redirect(location: str) -> Response:
    # no-store: a cached redirect would skip the click and reuse its click id.
    return Response(body="", status_code=302, headers={"Location": location, "Cache-Control": "no-store",
                                                       "Content-Type": "text/plain; charset=utf-8"})


@routes.get("/v1/codes/{code}", rate_limit="lookup",
            summary="Public lookup for landing pages: validity, campaign offer, masked referrer")
def lookup(req: Req) -> Any:
    # An unknown code answers 200 {"valid": false}: the landing page renders either way, and
    # unknown, disabled and ended look alike.
    return codes.lookup(req.params["code"])


@routes.get("/v1/ops/reserved-codes", roles=(OPS,), summary="Words ops reserved for vanity codes (besides the built-in list)")
def reserved_codes(req: Req) -> Any:
    return {"words": sorted(reserved.extra_words())}


@routes.post("/v1/ops/reserved-codes", roles=(OPS,), body=ReservedIn,
             summary="Reserve more words (brand names): no vanity code may contain them; audited")
def reserve_codes(req: Req) -> Any:
    return {"words": reserved.add(req.body.words, req.principal.sub)}
