def test_first_login_creates_member_and_welcome(client, streams):
    r = client.post("/v1/auth/login", {"provider": "dev", "openid": "o1", "display_name": "张三"})
    assert r.status_code == 200, r.body
    t = r.json_body["access_token"]
    me = client.get("/v1/members/me", token=t)
    assert me.status_code == 200, me.body
    streams.drain()
    n = client.get("/v1/members/me/notifications", token=t)
    assert n.json_body["items"][0]["kind"] == "welcome"
    r2 = client.post("/v1/auth/login", {"provider": "dev", "openid": "o1"})
    assert r2.json_body["created"] is False
    assert client.get("/openapi.json").status_code == 200
    assert client.post("/v1/auth/login", raw=b"{nope").json_body["error"]["code"] == "malformed_json"
    smuggled = client.post("/v1/auth/login", {"provider": "dev", "openid": "o1", "role": "admin"})
    assert smuggled.status_code == 422
