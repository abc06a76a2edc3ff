"""Tests of the fake Discord's routes for what modules do on their own:
DMs and users who closed them, channel renames under Discord's hidden
2-per-10-minutes limit, guild bans behind BAN_MEMBERS, member counts, and
presence updates (op 3) at most 5 per 60 s per shard.

Run: /usr/bin/python3 -m pytest -q tests/fakes
"""

import aiohttp

from test_fake_discord import GW, Rest, channel_ids, names, run, session_and  # noqa: F401
from test_fake_discord import fake, make_fake  # noqa: F401  (fixtures)

BAN_MEMBERS = 1 << 2


def members(fake):
    g = fake.state(rest_log=False)["guilds"][0]
    return [m for m in g["member_ids"] if m not in (fake.bot_user_id, g["owner_id"])]


def test_dm_channels_and_closed_dms(fake):
    user = members(fake)[0]

    async def body(http, rest):
        st, _, ch = await rest.call("POST", "/users/@me/channels", {"recipient_id": user})
        assert st == 200 and ch["type"] == 1 and ch["recipients"][0]["id"] == user
        # The same user gets the same DM channel.
        st, _, again = await rest.call("POST", "/users/@me/channels", {"recipient_id": user})
        assert again["id"] == ch["id"]
        st, _, m = await rest.call("POST", "/channels/%s/messages" % ch["id"], {"content": "hi"})
        assert st == 200 and m["channel_id"] == ch["id"]
        # The user closes DMs: opening the channel still works, sending does not.
        fake.post("/_fake/users/%s/dms" % user, {"open": False})
        st, _, e = await rest.call("POST", "/channels/%s/messages" % ch["id"], {"content": "hi"})
        assert st == 403 and e == {"message": "Cannot send messages to this user", "code": 50007}
        fake.post("/_fake/users/%s/dms" % user, {"open": True})
        st, _, m = await rest.call("POST", "/channels/%s/messages" % ch["id"], {"content": "back"})
        assert st == 200
        # Unknown users and bots are not recipients.
        for rcpt in ("123456789012345678", fake.bot_user_id):
            st, _, e = await rest.call("POST", "/users/@me/channels", {"recipient_id": rcpt})
            assert st == 400 and e["code"] == 50033
        # A body without a recipient has none.
        st, _, e = await rest.call("POST", "/users/@me/channels", {})
        assert st == 400
    run(session_and(fake, body))
    assert fake.state(rest_log=False)["actions"]["dm_channels"] == {
        user: fake.state(rest_log=False)["actions"]["dm_channels"][user]}
    assert names(fake.reset_violations()) == []
    st = fake.state()
    assert st["rest"]["stats"]["invalid_requests"] >= 1  # the 403 counts


def test_rename_limit_is_hidden_from_the_bucket(fake):
    cid, other = channel_ids(fake)[:2]

    async def body(http, rest):
        heads = []
        for name in ("members-1", "members-2"):
            st, h, c = await rest.call("PATCH", "/channels/%s" % cid, {"name": name})
            assert st == 200 and c["name"] == name
            heads.append(h)
        # Nothing in the headers warns of the limit.
        assert int(heads[-1]["X-RateLimit-Remaining"]) >= 3
        assert float(heads[-1]["X-RateLimit-Reset-After"]) <= 5
        # An edit without a name is no rename.
        st, _, c = await rest.call("PATCH", "/channels/%s" % cid, {"topic": "counts"})
        assert st == 200
        # The third rename in 10 minutes: a 429 of about 10 minutes.
        st, h, e = await rest.call("PATCH", "/channels/%s" % cid, {"name": "members-3"})
        assert st == 429
        assert 590 < e["retry_after"] <= 600 and e["global"] is False
        assert int(h["Retry-After"]) >= 590 and h["X-RateLimit-Scope"] == "user"
        assert int(h["X-RateLimit-Remaining"]) >= 1
        st, _, c = await rest.call("GET", "/channels/%s" % cid)
        assert c["name"] == "members-2"
        # Another channel has its own count.
        st, _, c = await rest.call("PATCH", "/channels/%s" % other, {"name": "online-1"})
        assert st == 200
    run(session_and(fake, body))
    v = fake.reset_violations()
    assert names(v) == ["channel_rename_limit"] and v[0]["channel_id"] == cid
    log = fake.state()["actions"]["renames"]
    assert [(r["name"], r["refused"]) for r in log] == [
        ("members-1", False), ("members-2", False), ("members-3", True), ("online-1", False)]
    assert fake.state()["rest"]["stats"]["rename_429"] == 1


def test_bans_need_ban_members_and_page(fake):
    gid = fake.guilds[0]["id"]

    async def body(http, rest):
        st, _, e = await rest.call("GET", "/guilds/%s/bans" % gid)
        assert st == 403 and e == {"message": "Missing Permissions", "code": 50013}
        fake.post("/_fake/guilds/%s/bans" % gid, {"count": 2500, "dispatch": False})
        fake.post("/_fake/guilds/%s/bot_permissions" % gid, {"permissions": str(BAN_MEMBERS)})
        seen, after, pages = [], "0", 0
        while True:
            st, _, page = await rest.call("GET", "/guilds/%s/bans?limit=1000&after=%s" % (gid, after))
            assert st == 200
            pages += 1
            if not page:
                break
            ids = [b["user"]["id"] for b in page]
            assert ids == sorted(ids, key=int) and all(int(i) > int(after) for i in ids)
            seen += ids
            after = ids[-1]
            if len(page) < 1000:
                break
        assert len(seen) == 2500 and len(set(seen)) == 2500 and pages == 3
        st, _, page = await rest.call("GET", "/guilds/%s/bans" % gid)
        assert len(page) == 1000  # the default limit
        st, _, e = await rest.call("GET", "/guilds/%s/bans?limit=1001" % gid)
        assert st == 400 and e["code"] == 50035
        st, _, e = await rest.call("GET", "/guilds/1/bans")
        assert st == 404 and e["code"] == 10004
    run(session_and(fake, body))
    assert names(fake.reset_violations()) == ["bad_query"]
    assert fake.state(rest_log=False)["actions"]["bans"] == {gid: 2500}


def test_member_counts(fake):
    gid = fake.guilds[0]["id"]

    async def body(http, rest):
        st, _, g0 = await rest.call("GET", "/guilds/%s?with_counts=true" % gid)
        fake.post("/_fake/guilds/%s/members" % gid, {"add": 10, "remove": 3, "online": 4})
        st, _, g1 = await rest.call("GET", "/guilds/%s?with_counts=true" % gid)
        assert g1["approximate_member_count"] == g0["approximate_member_count"] + 7
        assert g1["approximate_presence_count"] == 4
    run(session_and(fake, body))


def test_presence_updates_limit(fake):
    async def body(http, rest):
        gw = await GW.open(http, fake)
        await gw.start(fake)
        for i in range(6):
            await gw.send({"op": 3, "d": {"since": None, "status": "online", "afk": False,
                                          "activities": [{"name": "p%d" % i, "type": 3}]}})
        fake.wait("violation", timeout=5)
        await gw.close()
    run(session_and(fake, body))
    ups = fake.state(rest_log=False)["actions"]["presence_updates"]
    assert [u["over_limit"] for u in ups] == [False] * 5 + [True]
    assert ups[0]["d"]["activities"][0]["name"] == "p0" and ups[0]["shard"] == 0
    v = fake.reset_violations()
    assert names(v) == ["presence_rate_limit"] and v[0]["count"] == 6
