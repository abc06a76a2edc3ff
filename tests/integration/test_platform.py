"""The module-facing Discord and settings APIs end to end: the real souk,
built with its test-only module (tests/hooks, Debug builds only), against
the fake Discord.  Owner-only /testhooks commands call souk_discord_* and
souk_setting_* exactly as a module would; the fake sees every request
through the REST client and its rate limiter, and fails the test on any
protocol violation (an avoidable 429, a third rename in 10 minutes, a
sixth presence update in a minute, a body the spec refuses)."""
import json
import re
import sqlite3
import subprocess
import time

from conftest import souk_config
from soukproc import sanitized, souk_bin

WAIT = 60 if sanitized() else 20
BAN_MEMBERS = 1 << 2


def start(fake, souk_factory, name="souk", **overrides):
    s = souk_factory(fake, name=name,
                     config=souk_config(fake, f"{name}-data", **overrides) if overrides else None)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("ready", timeout=WAIT)
    s.wait_log("registered", timeout=WAIT)
    s.wait_log("owner-only commands answer", timeout=WAIT)
    return s


def guild(fake, i=0):
    return fake.state(rest_log=False)["guilds"][i]


def text_channels(g):
    return [c["id"] for c in g["channels"] if c["type"] == 0]


def body_of(r):
    b = r.get("body")
    return json.loads(b) if isinstance(b, str) else b


def answer(fake, iid, token):
    """The text souk answered an interaction with: the callback's content,
    or, when it was deferred, the edit of @original that followed."""
    deadline = time.monotonic() + WAIT
    while True:
        deferred = False
        for r in fake.requests():
            if r["method"] == "POST" and f"/interactions/{iid}/" in r["path"]:
                cb = body_of(r)
                if cb["type"] == 4:
                    return cb["data"]["content"]
                deferred = True
            if deferred and r["method"] == "PATCH" and token in r["path"] and \
                    r["path"].endswith("/messages/@original"):
                return body_of(r)["content"]
        assert time.monotonic() < deadline, f"no answer to interaction {iid}"
        time.sleep(0.05)


def hook(fake, sub, guild_index=0, **opts):
    """Run /testhooks <sub> as the guild's owner; returns the answer as a
    dict of its key=value words (plus "ok" or "error")."""
    types = {bool: 5, int: 4}
    options = []
    for k, v in opts.items():
        t = 7 if k == "channel" else 6 if k == "user" else types.get(type(v), 3)
        options.append({"name": k, "type": t, "value": v})
    g = guild(fake, guild_index)
    r = fake.interaction("testhooks", guild_id=g["id"], user_id=g["owner_id"],
                         options=[{"name": sub, "type": 1, "options": options}])
    text = answer(fake, r["id"], r["token"])
    out = {"text": text}
    for word in text.split():
        k, _, v = word.partition("=")
        out[k] = v if _ else True
    return out


def requests_to(fake, method, pattern):
    return [r for r in fake.requests() if r["method"] == method and re.search(pattern, r["path"])]


def test_messages_edits_and_the_coalescer(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    g = guild(fake)
    cid = text_channels(g)[1]
    # An alert with an embed and a button.
    r = hook(fake, "send", channel=cid, text="Cheap Hyperion", extras=True)
    assert "ok" in r, r["text"]
    mid = r["message"]
    msg = next(m for m in fake.messages(cid) if m["id"] == mid)
    assert msg["content"] == "Cheap Hyperion" and msg["embeds"][0]["title"] == "Test alert"
    assert msg["components"][0]["components"][0]["custom_id"] == "testhooks:ack:1"
    post = requests_to(fake, "POST", f"/channels/{cid}/messages$")[-1]
    assert body_of(post)["allowed_mentions"] == {"parse": []}
    assert body_of(post)["enforce_nonce"] is True
    # A plain edit replaces the whole message.
    r = hook(fake, "edit", channel=cid, message=mid, text="Sold")
    assert "ok" in r and r["message"] == mid
    msg = next(m for m in fake.messages(cid) if m["id"] == mid)
    assert msg["content"] == "Sold" and msg["embeds"] == [] and msg["components"] == []
    # 40 states at once: one edit now, the last state one interval later.
    before = len(requests_to(fake, "PATCH", f"/channels/{cid}/messages/{mid}$"))
    t0 = time.monotonic()
    r = hook(fake, "burst", channel=cid, message=mid, count=40, interval_ms=1000)
    assert r["queued"] == "40"
    fake.wait_for(lambda st: next(m for m in fake.messages(cid) if m["id"] == mid)["content"]
                  == "state 40 of 40", timeout=WAIT, what="the last state")
    edits = requests_to(fake, "PATCH", f"/channels/{cid}/messages/{mid}$")[before:]
    assert len(edits) == 2, [body_of(e)["content"] for e in edits]
    assert body_of(edits[0])["content"] == "state 1 of 40"
    assert edits[1]["at"] - edits[0]["at"] >= 0.95
    assert time.monotonic() - t0 < WAIT
    # A click on the alert's button: acknowledged at once with a deferred
    # update (type 6), then the message is edited.
    time.sleep(1.1)
    r = fake.interaction(type=3, guild_id=g["id"], channel_id=cid, user_id=g["owner_id"],
                         data={"custom_id": "testhooks:ack:1", "component_type": 2},
                         message={"id": mid, "channel_id": cid})
    fake.wait_for(lambda st: any(body_of(x) == {"type": 6} for x in requests_to(
        fake, "POST", f"/interactions/{r['id']}/")), timeout=WAIT, what="the deferred update")
    fake.wait_for(lambda st: next(m for m in fake.messages(cid) if m["id"] == mid)["content"]
                  == "acknowledged", timeout=WAIT, what="the edit after the click")
    # A deleted message: 10008, mapped to ENOTFOUND.
    r = hook(fake, "delete", channel=cid, message=mid)
    assert "ok" in r
    r = hook(fake, "edit", channel=cid, message=mid, text="again")
    assert r["error"] == "ENOTFOUND" and r["code"] == "10008" and r["status"] == "404"
    assert s.stop() == 0


def test_dms_and_closed_dms(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    g = guild(fake)
    user = [m for m in g["member_ids"] if m not in (fake.bot_user_id, g["owner_id"])][0]
    r = hook(fake, "dm", user=user, text="Your auction sold")
    assert "ok" in r, r["text"]
    dm = r["channel"]
    assert fake.state(rest_log=False)["actions"]["dm_channels"][user] == dm
    assert [m["content"] for m in fake.messages(dm)] == ["Your auction sold"]
    # The DM channel is opened once per user.
    r = hook(fake, "dm", user=user, text="Again")
    assert "ok" in r and len(requests_to(fake, "POST", "/users/@me/channels$")) == 1
    # The user closes DMs: 50007, reported, and never asked again.
    fake.post(f"/_fake/users/{user}/dms", {"open": False})
    r = hook(fake, "dm", user=user, text="Blocked")
    assert r["error"] == "EFORBIDDEN" and r["code"] == "50007" and r["status"] == "403"
    sent = len(requests_to(fake, "POST", f"/channels/{dm}/messages$"))
    r = hook(fake, "dm", user=user, text="Blocked again")
    assert r["error"] == "EFORBIDDEN" and r["code"] == "50007" and r["status"] == "0"
    assert len(requests_to(fake, "POST", f"/channels/{dm}/messages$")) == sent
    assert s.stop() == 0


def test_renames_never_hit_the_hidden_limit(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    cid = text_channels(guild(fake))[0]
    results = [hook(fake, "rename", channel=cid, name=f"Members: {n}") for n in range(10, 16)]
    assert ["ok" in r for r in results] == [True, True, False, False, False, False]
    for r in results[2:]:
        assert r["error"] == "ERATELIMIT" and r["refused"] == "1"
        assert 590000 < int(r["wait_ms"]) <= 600000
    renames = fake.state(rest_log=False)["actions"]["renames"]
    assert [x["name"] for x in renames] == ["Members: 10", "Members: 11"]
    assert not any(x["refused"] for x in renames)
    # Another channel has its own count.
    other = text_channels(guild(fake))[1]
    assert "ok" in hook(fake, "rename", channel=other, name="Online: 3")
    assert s.stop() == 0


def test_counts_bans_and_permissions(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    g = guild(fake)
    fake.post(f"/_fake/guilds/{g['id']}/members", {"add": 7, "online": 5})
    r = hook(fake, "counts")
    assert r["members"] == str(g["member_count"] + 7) and r["online"] == "5"
    # Without BAN_MEMBERS: the cache says so, and Discord says 50013.
    r = hook(fake, "can", perm=BAN_MEMBERS)
    assert r["can"] == "0" and r["bot"] == fake.bot_user_id
    assert hook(fake, "can", perm=1 << 11, channel=text_channels(g)[0])["can"] == "1"
    r = hook(fake, "bans")
    assert r["error"] == "EFORBIDDEN" and r["code"] == "50013"
    # Granted (GUILD_ROLE_UPDATE reaches the cache), with 2,500 bans: three
    # pages of at most 1,000.
    fake.post(f"/_fake/guilds/{g['id']}/bans", {"count": 2500, "dispatch": False})
    fake.post(f"/_fake/guilds/{g['id']}/bot_permissions", {"permissions": str(BAN_MEMBERS | 3072)})
    fake.wait_for(lambda st: hook(fake, "can", perm=BAN_MEMBERS)["can"] == "1", timeout=WAIT,
                  what="the role update in the cache")
    r = hook(fake, "bans")
    assert r["bans"] == "2500" and r["pages"] == "3"
    assert s.stop() == 0


def test_presence_stays_within_discords_limit(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    for i in range(8):
        assert "ok" in hook(fake, "presence", text=f"auctions {i}", type=3)
    fake.wait_for(lambda st: len(st["actions"]["presence_updates"]) >= 5, timeout=WAIT,
                  what="five presence updates")
    time.sleep(1.0)
    ups = fake.state(rest_log=False)["actions"]["presence_updates"]
    # Five at once; the rest wait for the window (and only the latest goes).
    assert len(ups) == 5 and not any(u["over_limit"] for u in ups)
    assert [u["d"]["activities"][0]["name"] for u in ups] == [f"auctions {i}" for i in range(5)]
    assert ups[0]["d"]["activities"][0]["type"] == 3
    assert s.stop() == 0


def test_settings_reach_another_process(fake_discord, souk_factory, tmp_path):
    """Two processes share one store, as shards of one bot do: a user's
    setting made through one is seen by the other after its re-read (run
    at once here with /admin task-restart); bad values are refused with the
    config file's message; a guild setting defaults to a config key."""
    fake = fake_discord
    fake.config(shards=2, max_concurrency=2)
    # Guilds on both shards.
    while {(int(g["id"]) >> 22) % 2 for g in fake.state(rest_log=False)["guilds"]} != {0, 1}:
        fake.add_guild(name="More")
    db = tmp_path / "shared.db"
    procs = []
    for shard in (0, 1):
        procs.append(souk_factory(fake, name=f"s{shard}", config=souk_config(
            fake, tmp_path / f"s{shard}-data", commands={"prefix": "?"},
            store={"url": f"sqlite://{db}"},
            discord={"shards": {"count": 2, "first": shard, "last": shard}})))
    for p in procs:
        p.wait_log("ready", timeout=WAIT)
        p.wait_log("owner-only commands answer", timeout=WAIT)
    guilds = fake.state(rest_log=False)["guilds"]
    g0 = next(i for i, g in enumerate(guilds) if (int(g["id"]) >> 22) % 2 == 0)
    g1 = next(i for i, g in enumerate(guilds) if (int(g["id"]) >> 22) % 2 == 1)
    assert guilds[g0]["owner_id"] == guilds[g1]["owner_id"]
    r = hook(fake, "setting", guild_index=g0, key="testhooks.tz", value="Europe/Paris")
    assert r["value"] == "Europe/Paris" and r["source"] == "set"
    r = hook(fake, "setting", guild_index=g0, key="testhooks.tz", value="Mars/Base")
    assert r["error"] == "EINVAL" and "IANA time zone" in r["text"]
    r = hook(fake, "setting", guild_index=g1, key="testhooks.tz")
    assert r["value"] == "UTC" and r["source"] == "default"
    # The write is in the shared store.
    fake.wait_for(lambda st: sqlite3.connect(str(db)).execute(
        "SELECT value FROM settings WHERE key = 'testhooks.tz'").fetchall() == [("Europe/Paris",)],
        timeout=WAIT, what="the stored setting")
    owner = guilds[g1]["owner_id"]
    cb = fake.interaction("admin", guild_id=guilds[g1]["id"], user_id=owner, options=[
        {"name": "task-restart", "type": 1,
         "options": [{"name": "task", "type": 3, "value": "settings.refresh"}]}])
    assert "will run again now" in answer(fake, cb["id"], cb["token"])
    fake.wait_for(lambda st: hook(fake, "setting", guild_index=g1,
                                  key="testhooks.tz")["value"] == "Europe/Paris",
                  timeout=WAIT, what="the setting in the other process")
    # A guild setting whose default is commands.prefix, and a bounded one.
    r = hook(fake, "setting", guild_index=g0, key="testhooks.prefix")
    assert r["value"] == "?" and r["source"] == "config"
    r = hook(fake, "setting", guild_index=g0, key="testhooks.count", value="11")
    assert r["error"] == "EINVAL" and "between 1 and 10" in r["text"]
    for p in procs:
        assert p.stop() == 0
    # The audit line: who changed what, from what.
    assert any("testhooks.tz = " in line and "Europe/Paris" in line and f"by user {owner}" in line
               for line in procs[0].lines)


def test_console_prints_every_action(tmp_path):
    """In `souk console` the same calls print, with made-up ids, and finish
    through their callbacks."""
    script = "\n".join([
        "/testhooks send channel:100000000000000003 text:Alert extras:true",
        "1",
        "/testhooks rename channel:100000000000000003 name:one",
        "/testhooks rename channel:100000000000000003 name:two",
        "/testhooks rename channel:100000000000000003 name:three",
        "/testhooks dm user:100000000000000001 text:psst",
        "/testhooks counts",
        "/testhooks presence text:\"the market\" type:3",
        "/testhooks setting key:testhooks.count value:4",
        "",
    ])
    (tmp_path / "c.yaml").write_text("core:\n  data_dir: ./d\n")
    r = subprocess.run([souk_bin(), "console", "-c", str(tmp_path / "c.yaml")], cwd=tmp_path,
                       input=script, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"\[#100000000000000003\] message (\d+):\nAlert\n\+-- Test alert\n", out), out
    assert "[1] Acknowledge\n(type a number to press it)" in out
    assert re.search(r"message \d+ edited:\nacknowledged", out), out
    assert out.count("channel renamed to") == 2
    wait = re.search(r"error=ERATELIMIT status=0 code=0 refused=1 wait_ms=(\d+)", out)
    assert wait and 590000 < int(wait.group(1)) <= 600000, out
    assert re.search(r"\[DM to user 100000000000000001\] message \d+:\npsst", out), out
    assert "ok members=1 online=1" in out
    assert "[presence] online: Watching the market" in out
    assert "ok value=4 source=set" in out
