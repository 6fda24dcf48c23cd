"""WeChat mini-program login against a small fake code2session server on 127.0.0.1, and the
dev provider's switch."""
from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.core import aws
from chalicelib.store.base import table_name

APP_ID, APP_SECRET = "wx-test-app", "wx-test-secret"

# js_code → what the fake WeChat answers. "<anything>:<openid>" logs in as that openid.
ANSWERS = {
    "used": (200, {"errcode": 40029, "errmsg": "invalid code"}),
    "busy": (200, {"errcode": -1, "errmsg": "system error"}),
    "frequency": (200, {"errcode": 45011, "errmsg": "api minute-quota reach limit"}),
    "no-openid": (200, {"session_key": "k"}),
    "list": (200, []),
    "errcode-text": (200, {"errcode": "oops"}),
    "html": (200, "<html>maintenance</html>"),
    "http-500": (500, {"errcode": -1}),
}


class FakeWeChat(BaseHTTPRequestHandler):
    requests: list[dict[str, str]] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        FakeWeChat.requests.append({"path": url.path, **query})
        code = query.get("js_code", "")
        if code == "hang-up":  # close the connection without an answer
            self.close_connection = True
            return
        if url.path != "/sns/jscode2session":
            status, answer = 404, {"errcode": 404}
        elif ":" in code:
            status, answer = 200, {"openid": code.split(":", 1)[1], "session_key": "sk"}
        else:
            status, answer = ANSWERS.get(code, (200, {"errcode": 40029, "errmsg": "invalid code"}))
        payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):
        pass




@pytest.fixture
def wechat(backend, configure):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeWeChat.requests = []
    configure(WECHAT_API_BASE=f"http://127.0.0.1:{server.server_address[1]}",
              WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET=APP_SECRET)
    yield FakeWeChat
    server.shutdown()
    server.server_close()


def main_table_items() -> int:
    return aws.dynamodb().scan(TableName=table_name("main"), Select="COUNT", ConsistentRead=True)["Count"]


def login(client, code: str):
    return client.post("/v1/auth/login", {"provider": "wechat", "code": code})


def assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json_body["error"]["code"] == code, response.body
    assert response.json_body["error"]["message"]


def test_first_login_creates_the_member_and_the_next_finds_it(client, wechat):
    first = login(client, "code-1:o_wx_alice")
    assert first.status_code == 200, first.body
    assert first.json_body["created"] is True
    member_id = first.json_body["member"]["member_id"]
    assert first.json_body["token_type"] == "Bearer"
    me = client.get("/v1/members/me", token=first.json_body["access_token"])
    assert me.status_code == 200, me.body
    assert me.json_body["member_id"] == member_id

    second = login(client, "code-2:o_wx_alice")  # wx.login() gives a new code every time
    assert second.status_code == 200, second.body
    assert second.json_body["created"] is False
    assert second.json_body["member"]["member_id"] == member_id

    other = login(client, "code-3:o_wx_bob")
    assert other.json_body["created"] is True
    assert other.json_body["member"]["member_id"] != member_id


def test_code2session_is_called_with_the_configured_app(client, wechat):
    assert login(client, "abc:o_1").status_code == 200
    assert wechat.requests == [{"path": "/sns/jscode2session", "appid": APP_ID, "secret": APP_SECRET,
                                "js_code": "abc:o_1", "grant_type": "authorization_code"}]


def test_an_invalid_code_is_401_and_writes_nothing(client, wechat):
    before = main_table_items()
    assert_envelope(login(client, "used"), 401, "invalid_login_code")
    assert main_table_items() == before


@pytest.mark.parametrize("code", ["busy", "frequency", "no-openid", "list", "errcode-text", "html",
                                  "http-500", "hang-up"])
def test_wechat_errors_are_502_and_write_nothing(client, wechat, code):
    before = main_table_items()
    r = login(client, code)
    assert_envelope(r, 502, "wechat_unavailable")
    assert APP_SECRET not in r.body.decode()
    assert main_table_items() == before


def test_wechat_errcode_is_reported(client, wechat):
    assert login(client, "frequency").json_body["error"]["details"] == {"errcode": 45011}


def test_wechat_down_is_502_and_writes_nothing(client, wechat, configure):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(WECHAT_API_BASE=f"http://127.0.0.1:{port}")
    before = main_table_items()
    assert_envelope(login(client, "code:o_x"), 502, "wechat_unavailable")
    assert main_table_items() == before


@pytest.mark.parametrize("unset", ["WECHAT_APP_ID", "WECHAT_APP_SECRET"])
def test_wechat_not_configured_is_the_callers_422_and_writes_nothing(client, wechat, configure, unset):
    configure(**{unset: ""})
    before = main_table_items()
    assert_envelope(login(client, "code:o_x"), 422, "provider_not_enabled")
    assert wechat.requests == []
    assert main_table_items() == before


def test_wechat_without_code_is_422(client, wechat):
    assert_envelope(client.post("/v1/auth/login", {"provider": "wechat"}), 422, "validation_failed")
    assert wechat.requests == []


def test_dev_login_can_be_disabled(client, configure):
    assert client.post("/v1/auth/login", {"provider": "dev", "openid": "o_dev"}).status_code == 200
    configure(DEV_LOGIN_ENABLED="false")
    before = main_table_items()
    assert_envelope(client.post("/v1/auth/login", {"provider": "dev", "openid": "o_dev2"}), 422,
                    "provider_not_enabled")
    assert main_table_items() == before
