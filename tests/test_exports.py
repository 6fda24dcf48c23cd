"""CSV exports: files Excel opens (BOM, CRLF, header, Chinese intact, no formulas), the
leaderboard in the route's order, the ledger as the referral flow wrote it and only inside the
asked days, pages that together hold every row once, and the errors ops can cause."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from chalicelib.core import clock
from chalicelib.exports import csvfile, handlers, kinds, leaderboard
from chalicelib.leaderboards import rules, scores
from chalicelib.members.models import member_pk
from chalicelib.referrals.clicks import local_day
from chalicelib.rewards.models import LedgerEntry
from chalicelib.streams import Change
from tests.flows import code_of, login, spring_campaign
from tests.helpers import token

ZONE = "Asia/Shanghai"
INJECTION = "=HYPERLINK(\"http://evil.example\",\"点我\")"


def ops() -> str:
    return token("olivia", "ops")  # issued now: these tests move the clock by days


def fact(client, kind: str, body: dict):
    response = client.post(f"/v1/events/{kind}", body, token=token("brand", "service"))
    assert response.status_code == 200, response.body


def export(client, file: str, as_token: str | None = None, **params):
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return client.get(f"/v1/ops/exports/{file}" + (f"?{query}" if query else ""), token=as_token or ops())


def opened(response) -> list[dict[str, str]]:
    """The rows as Excel would see them: a UTF-8 file with a BOM, CRLF rows, a header."""
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="')
    body = response.body
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def next_target(response) -> str:
    link = response.headers["Link"]
    return link[link.index("<") + 1:link.index(">")]


def every_page(client, file: str, **params) -> tuple[list[dict[str, str]], int]:
    """Follow `Link: rel="next"` to the end; the rows of all pages, and how many pages."""
    response = export(client, file, **params)
    rows, pages = [], 0
    while True:
        rows += opened(response)
        pages += 1
        link = response.headers.get("Link")
        if link is None:
            assert "X-Next-Cursor" not in response.headers
            return rows, pages
        target = link[link.index("<") + 1:link.index(">")]
        assert link.endswith('; rel="next"') and target.startswith(f"{file}?")
        query = {name: values[0] for name, values in parse_qs(urlsplit(target).query).items()}
        assert query["cursor"] == response.headers["X-Next-Cursor"]
        response = client.get(f"/v1/ops/exports/{target}", token=ops())


def advocates(client) -> dict[str, str]:
    spring_campaign(client)
    ids = {}
    for name, shown in (("ada", "张三丰"), ("bob", INJECTION), ("cai", "Cai")):
        _, ids[name], _ = login(client, f"{name}-openid", shown)
    return ids


def refer(client, advocate_id: str, referee: str, amount_fen: int = 100_00) -> None:
    fact(client, "signups", {"member_id": referee, "display_name": f"朋友{referee}",
                             "referral": {"code": code_of(advocate_id, "spring")}})
    fact(client, "purchases", {"order_id": f"o-{referee}", "member_id": referee, "amount_fen": amount_fen})


def campaign_entries(member_ids) -> list[LedgerEntry]:
    found = []
    for member_id in member_ids:
        found += [e for e in LedgerEntry.query(member_pk(member_id), LedgerEntry.sk.startswith("LEDGER#"),
                                               consistent_read=True) if e.campaign_id == "spring"]
    return found


def as_exported(entry: LedgerEntry) -> dict[str, str]:
    return {"entry_id": entry.entry_id, "member_id": entry.member_id, "rule": entry.rule, "unit": entry.unit,
            "amount": str(int(entry.amount)), "reversed_amount": str(int(entry.reversed_amount or 0)),
            "status": entry.status, "created_at": entry.created_at, "available_at": entry.available_at or "",
            "order_id": entry.order_id or "", "referee_id": entry.referee_id or ""}


def test_leaderboard_csv_is_the_routes_order_with_full_names_and_no_formulas(client, streams):
    ids = advocates(client)
    refer(client, ids["ada"], "f1")
    refer(client, ids["ada"], "f2")
    refer(client, ids["bob"], "f3")
    refer(client, ids["cai"], "f4")
    streams.drain()
    for metric in ("referrals", "gmv", "points"):
        route = client.get(f"/v1/leaderboards/spring?metric={metric}&limit=100", token=ops()).json_body["items"]
        response = export(client, "leaderboard.csv", campaign_id="spring", metric=metric)
        rows = opened(response)
        assert [(r["rank"], r["member_id"], r["score"]) for r in rows] == \
            [(str(i["rank"]), i["member"]["member_id"], str(i["score"])) for i in route]
    names = {row["member_id"]: row["display_name"] for row in rows}
    assert names[ids["ada"]] == "张三丰"  # Chinese survives the round trip
    assert names[ids["bob"]] == "'" + INJECTION  # a name that would run as a formula is shown as text
    assert response.headers["Content-Disposition"] == 'attachment; filename="leaderboard-spring-points-all.csv"'
    referrals = opened(export(client, "leaderboard.csv", campaign_id="spring"))
    tied = sorted([(ids["bob"], "'" + INJECTION), (ids["cai"], "Cai")])  # a tie lists the lower member id first
    assert [(r["rank"], r["display_name"], r["score"]) for r in referrals] == \
        [("1", "张三丰", "2"), ("2", tied[0][1], "1"), ("2", tied[1][1], "1")]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_every_formula_start_is_defused(text):
    assert csvfile.cell(text) == "'" + text
    assert csvfile.cell("a=1") == "a=1" and csvfile.cell(-5) == -5  # numbers stay numbers


def test_ledger_csv_holds_the_flows_entries_and_only_those_of_the_asked_days(client, streams):
    ids = advocates(client)
    first_day = local_day(clock.now(), ZONE)
    refer(client, ids["ada"], "f1")
    streams.drain()
    clock.advance(timedelta(days=3))
    refer(client, ids["bob"], "f2")
    streams.drain()
    clock.advance(timedelta(days=3))  # past the quick-refund window: a reversal, not a fraud flag
    fact(client, "refunds", {"order_id": "o-f2", "refund_id": "r1", "amount_fen": 50_00})
    streams.drain()
    members = [ids["ada"], ids["bob"], "f1", "f2"]
    entries = campaign_entries(members)
    assert {e.rule for e in entries} >= {"conversion", "commission"} and any(e.reversed_amount for e in entries)
    today = local_day(clock.now(), ZONE)

    rows = opened(export(client, "ledger.csv", campaign_id="spring", **{"from": first_day, "to": today}))
    names = {row["member_id"]: row.pop("display_name") for row in rows}
    assert names[ids["ada"]] == "张三丰"
    assert sorted(rows, key=lambda r: r["entry_id"] + r["member_id"]) == \
        sorted((as_exported(e) for e in entries), key=lambda r: r["entry_id"] + r["member_id"])
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)  # oldest first

    only_first = opened(export(client, "ledger.csv", campaign_id="spring", **{"from": first_day, "to": first_day}))
    assert only_first and {r["member_id"] for r in only_first} <= {ids["ada"], "f1"}
    assert {r["entry_id"] for r in only_first} == {e.entry_id for e in entries if e.member_id in (ids["ada"], "f1")}
    later = opened(export(client, "ledger.csv", campaign_id="spring",
                          **{"from": local_day(clock.now() - timedelta(days=4), ZONE), "to": today}))
    assert later and {r["member_id"] for r in later} <= {ids["bob"], "f2"}
    assert len(later) + len(only_first) == len(rows)
    response = export(client, "ledger.csv", campaign_id="spring", **{"from": first_day, "to": today})
    assert response.headers["Content-Disposition"] == f'attachment; filename="ledger-spring-{first_day}-{today}.csv"'

    # a redelivered stream changes no exported row, and an older image replayed late (a re-drive
    # from the failure store) cannot put the entry's earlier state back
    before = response.body
    streams.replay_from_start()
    assert streams.drain() > 0
    reversed_entry = next(e for e in entries if e.reversed_amount)
    earlier = LedgerEntry.from_raw_data(reversed_entry.serialize())
    earlier.reversed_amount, earlier.status = 0, "pending"
    handlers.keep_export_row(Change("MODIFY", "ledger_entry", earlier, None, sequence="1", ttl_expired=False))
    assert export(client, "ledger.csv", campaign_id="spring", **{"from": first_day, "to": today}).body == before


def test_pages_hold_every_row_exactly_once(client, streams, monkeypatch):
    spring_campaign(client)
    board = rules.board("spring", "referrals", "all")
    # ties straddle the index's read pages (READ_PAGE 2) and the export's pages (limit 2), on both shards
    for n, score in enumerate([5, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1]):
        scores.apply(f"test.{n}", {board: (f"m{n:02d}", score)})
    monkeypatch.setattr(leaderboard, "READ_PAGE", 2)
    route = client.get("/v1/leaderboards/spring?limit=100", token=ops()).json_body["items"]
    expected = [(str(i["rank"]), i["member"]["member_id"], str(i["score"])) for i in route]
    for limit in (1, 2, 3, 5000):
        rows, pages = every_page(client, "leaderboard.csv", campaign_id="spring", limit=limit)
        assert [(r["rank"], r["member_id"], r["score"]) for r in rows] == expected
        assert pages == -(-len(expected) // limit)
    first = export(client, "leaderboard.csv", campaign_id="spring", limit=4)
    second = client.get(f"/v1/ops/exports/{first.headers['Link'][1:first.headers['Link'].index('>')]}", token=ops())
    assert second.headers["Content-Disposition"] == 'attachment; filename="leaderboard-spring-referrals-all-part2.csv"'

    # the byte budget also ends a page (Lambda's 6 MB), whatever the limit
    monkeypatch.setattr(csvfile, "MAX_PAGE_BYTES", 1)
    monkeypatch.setattr(csvfile, "CHUNK_ROWS", 3)
    rows, pages = every_page(client, "leaderboard.csv", campaign_id="spring")
    assert [(r["rank"], r["member_id"], r["score"]) for r in rows] == expected and pages == 4


def test_ledger_pages_hold_every_row_exactly_once(client, streams):
    ids = advocates(client)
    for n in range(3):
        refer(client, ids["ada" if n % 2 else "cai"], f"f{n}")
    streams.drain()
    whole = opened(export(client, "ledger.csv", campaign_id="spring"))
    assert len(whole) >= 6
    for limit in (1, 4):
        rows, pages = every_page(client, "ledger.csv", campaign_id="spring", limit=limit)
        assert rows == whole and pages == -(-len(whole) // limit)


def test_the_funnel_file_has_the_funnels_daily_figures(client, streams):
    from chalicelib.funnel.report import daily_rows

    ids = advocates(client)
    refer(client, ids["ada"], "f1", 120_00)
    refer(client, ids["cai"], "f2", 80_00)
    streams.drain()
    today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    rows = opened(export(client, "funnel.csv", campaign_id="spring", **{"from": today, "to": today}))
    assert rows == [{name: str(row[name]) for name in kinds.FUNNEL_COLUMNS}
                    for row in daily_rows("spring", today, today)]
    assert sum(int(r["signups"]) for r in rows) == 2 and sum(int(r["first_purchases"]) for r in rows) == 2
    assert sum(int(r["gmv_fen"]) for r in rows) == 200_00


def test_funnel_pages_restart_inside_a_day(client, monkeypatch):
    spring_campaign(client)
    calls = []

    def daily_rows(campaign_id, from_day, to_day, channel=None):
        calls.append((campaign_id, from_day, to_day, channel))
        for day in ("2026-11-01", "2026-11-02"):
            if from_day <= day <= to_day:
                for name in ("douyin", "wechat_friend", "weibo"):
                    yield {"day": day, "channel": name, "clicks": 10, "unique_visitors": 7, "signups": 2,
                           "first_purchases": 1, "gmv_fen": 100_00, "points": 500, "coupon_fen": 0, "invites": 3}

    monkeypatch.setitem(kinds.KINDS, "funnel", kinds.from_daily_rows(daily_rows))
    rows, pages = every_page(client, "funnel.csv", campaign_id="spring", limit=2,
                             **{"from": "2026-11-01", "to": "2026-11-30"})
    assert [(r["day"], r["channel"]) for r in rows] == [(d, c) for d in ("2026-11-01", "2026-11-02")
                                                        for c in ("douyin", "wechat_friend", "weibo")]
    assert pages == 3 and calls[0] == ("spring", "2026-11-01", "2026-11-30", None)
    assert rows[0]["gmv_fen"] == "10000" and list(rows[0]) == list(kinds.FUNNEL_COLUMNS)


def test_a_channel_appearing_between_pages_is_neither_lost_nor_repeated(client):
    from chalicelib.funnel import facts

    spring_campaign(client)
    day = "2026-11-20"
    facts.apply("x1", {("spring", day, "weibo"): {"signups": 1}})
    facts.apply("x2", {("spring", day, "wechat_friend"): {"signups": 2}})
    first = export(client, "funnel.csv", campaign_id="spring", limit=1, **{"from": day, "to": day})
    assert [r["channel"] for r in opened(first)] == ["wechat_friend"]
    # Between pages: a channel sorting before the page's last row (left to a fresh export, like
    # any row behind a cursor) and one after it (found in its turn). Nothing is written twice.
    facts.apply("x3", {("spring", day, "douyin"): {"signups": 5}})
    facts.apply("x4", {("spring", day, "xiaohongshu"): {"signups": 5}})
    following = client.get(f"/v1/ops/exports/{next_target(first)}", token=ops())
    assert [r["channel"] for r in opened(following)] == ["weibo"]
    last = client.get(f"/v1/ops/exports/{next_target(following)}", token=ops())
    assert [r["channel"] for r in opened(last)] == ["xiaohongshu"] and "Link" not in last.headers


def test_who_may_export_and_what_is_refused(client):
    spring_campaign(client)
    _, member_id, _ = login(client, "m-openid", "Mia")
    assert export(client, "ledger.csv", as_token=token(member_id)).status_code == 403
    assert client.get("/v1/ops/exports/ledger.csv").status_code == 401
    assert export(client, "ledger.csv", as_token=token("root", "admin")).status_code == 200
    for channel in ("nonsense", "all"):  # the funnel route's channels, no other
        assert export(client, "funnel.csv", campaign_id="spring", channel=channel).status_code == 422
    for file in ("payroll.csv", "ledger.json", "ledger", "funnel"):
        response = export(client, file)
        assert response.status_code == 404 and response.json_body["error"]["code"] == "export_not_found", file
    for bad in ({"from": "2026-02-30"}, {"to": "2026-13-01"}, {"from": "yesterday"}, {"to": "2026-1-5"}):
        response = export(client, "ledger.csv", campaign_id="spring", **bad)
        assert response.status_code == 422 and response.json_body["error"]["code"] == "validation_failed", bad
    for bad in ({"from": "2026-11-02", "to": "2026-11-01"}, {"from": "2025-01-01", "to": "2026-11-01"}):
        response = export(client, "ledger.csv", campaign_id="spring", **bad)
        assert response.status_code == 422 and response.json_body["error"]["code"] == "invalid_date_range", bad
    assert export(client, "ledger.csv", campaign_id="spring", limit=5001).status_code == 422
    assert export(client, "leaderboard.csv", campaign_id="spring", period="2026-13").status_code == 422
    unknown = export(client, "ledger.csv", campaign_id="nope")
    assert unknown.status_code == 404 and unknown.json_body["error"]["code"] == "campaign_not_found"
    assert export(client, "ledger.csv", campaign_id="spring", cursor="forged.cursor").status_code == 400


def test_the_document_describes_a_csv_file(client):
    operation = client.get("/openapi.json").json_body["paths"]["/v1/ops/exports/{file}"]["get"]
    ok = operation["responses"]["200"]
    assert ok["content"] == {"text/csv": {"schema": {"type": "string"}}}
    assert {"Content-Disposition", "X-Next-Cursor", "Link"} <= set(ok["headers"])
    assert {"campaign_id", "from", "to", "limit", "cursor", "metric", "period"} <= {p["name"] for p in operation["parameters"]}
    assert operation["x-roles"] == ["ops"]
