"""The server-stats module in the real souk binary, against the fake Discord
(which enforces the hidden 2-renames-per-10-minutes limit, paged bans behind
BAN_MEMBERS and with_counts), on a test clock (SOUK_TEST_CLOCK_FILE) so
minutes and days pass in seconds:

* 10 member changes in one minute make at most 2 renames; a restart in the
  middle keeps the window; once it opens the channel shows the last value;
* a bot without BAN_MEMBERS gets one clear message and makes no ban calls,
  and counts bans once the permission comes;
* the heartbeat edits one message for an hour, and posts again (and keeps
  the new one) after a deletion;
* the daily summary comes at its hour in the guild's time zone, across a
  DST change, once per day even across a restart;
* /stats usage shows the server's own command usage; adaptive polls and the
  REST queue are on /metrics; the presence rotates.
"""
import calendar
import time
import urllib.request

from conftest import souk_config
from modtools import (WAIT, TestClock, command, http_port, message_text, metric,
                      metrics, text_channels, wait_until)

GUILD_MEMBERS = 1 << 1
DEFAULT_INTENTS = 33281
BAN_MEMBERS = 1 << 2
BOT_PERMS = 2248473465835073  # the fake bot role's default: no Ban Members
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start(fake, souk_factory, clock, name="souk", discord=None, **stats):
    cfg = souk_config(fake, f"{name}-data", stats=stats, discord=dict(discord or {}))
    s = souk_factory(fake, name=name, env=clock.env(), config=cfg)
    s.wait_log("shard 0 ready", timeout=WAIT)
    s.wait_log("slash commands", timeout=WAIT)
    return s


def guild(fake):
    return fake.state(rest_log=False)["guilds"][0]


def renames(fake, cid):
    return [r for r in fake.state(rest_log=False)["actions"]["renames"] if r["channel_id"] == cid]


def channel_name(fake, cid):
    return next(c for c in guild(fake)["channels"] if c["id"] == cid)["name"]


def test_member_changes_rename_twice_and_a_restart_keeps_the_window(fake_discord, souk_factory,
                                                                    tmp_path):
    fake = fake_discord
    clock = TestClock(tmp_path / "clock")
    intents = {"intents": DEFAULT_INTENTS | GUILD_MEMBERS}
    # The GUILD_MEMBERS intent alone turns member events on: no stats setting.
    s = start(fake, souk_factory, clock, discord=intents)
    g = guild(fake)
    gid, cid = g["id"], text_channels(g)[1]
    members = g["member_count"] if "member_count" in g else len(g["members"])
    reply = command(fake, "stats", "channels", members=cid)
    assert "Saved." in reply and f"<#{cid}>" in reply
    assert "Sources: members from member events" in command(fake, "stats", "show")
    wait_until(lambda: channel_name(fake, cid) == f"Members: {members}", what="the first rename")
    # Ten joins in one (simulated) minute, souk restarted after the fifth.
    for i in range(10):
        fake.post(f"/_fake/guilds/{gid}/members", {"add": 1})
        members += 1
        clock.advance(6)
        time.sleep(0.4)
        if i == 4:
            s.stop()
            assert renames(fake, cid)  # the window was kept in the store...
            s = start(fake, souk_factory, clock, discord=intents)
    time.sleep(2)
    done = [r for r in renames(fake, cid) if not r["refused"]]
    assert len(done) == 2, done
    # The second showed a value of the first joins; the last is still to come.
    second = int(done[1]["name"].split(": ")[1])
    assert members - 10 < second < members, done
    assert channel_name(fake, cid) == done[1]["name"]
    assert not [r for r in renames(fake, cid) if r["refused"]]
    # Ten minutes after the first rename the window opens: the last value.
    clock.advance(600 - 60 + 6)
    fake.post("/_fake/renames/age", {"s": 600})
    wait_until(lambda: channel_name(fake, cid) == f"Members: {members}", what="the last value")
    time.sleep(2)
    done = [r for r in renames(fake, cid) if not r["refused"]]
    assert len(done) == 3 and done[-1]["name"] == f"Members: {members}", done
    text = command(fake, "stats", "show")
    assert f"`Members: {{members}}` = {members}; shown as `Members: {members}`" in text
    assert "members from member events" in text


def test_bans_without_ban_members_one_message_and_no_calls(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    clock = TestClock(tmp_path / "clock")
    s = start(fake, souk_factory, clock)
    g = guild(fake)
    gid, cid = g["id"], text_channels(g)[2]
    fake.post(f"/_fake/guilds/{gid}/bans", {"count": 3, "dispatch": False})
    reply = command(fake, "stats", "channels", bans=cid)
    assert "needs the **Ban Members** permission" in reply
    assert "does not ask Discord for bans" in reply
    for _ in range(4):
        clock.advance(3600)
        time.sleep(0.7)

    def ban_calls():
        return [r for r in fake.requests() if "/bans" in r["path"]]

    assert ban_calls() == []
    assert len([l for l in s.log_text().splitlines() if "needs the Ban Members" in l]) == 1
    assert "needs the **Ban Members** permission" in command(fake, "stats", "show")
    assert renames(fake, cid) == []
    # The permission comes (GUILD_ROLE_UPDATE): bans are paged once, counted.
    fake.post(f"/_fake/guilds/{gid}/bot_permissions", {"permissions": str(BOT_PERMS | BAN_MEMBERS)})
    wait_until(lambda: channel_name(fake, cid) == "Bans: 3", what="the ban counter")
    calls = ban_calls()
    assert len(calls) == 1 and "limit=1000" in calls[0]["query"] + calls[0]["path"]
    assert "Ban Members" not in command(fake, "stats", "show")


def test_heartbeat_edits_one_message_for_an_hour_and_reposts(fake_discord, souk_factory,
                                                            tmp_path):
    fake = fake_discord
    clock = TestClock(tmp_path / "clock")
    s = start(fake, souk_factory, clock)
    g = guild(fake)
    cid = text_channels(g)[1]
    assert f"<#{cid}>" in command(fake, "stats", "heartbeat", channel=cid)

    def beats():
        return [m for m in fake.messages(cid) if "souk heartbeat" in (m.get("content") or "")]

    def patches(mid):
        return [r for r in fake.requests()
                if r["method"] == "PATCH" and r["path"].endswith(f"/messages/{mid}")]

    first = wait_until(lambda: beats() or None, what="the heartbeat")[0]
    assert "status: **" in first["content"] and "gateway latency" in first["content"]
    for i in range(1, 13):  # an hour of five-minute heartbeats
        clock.advance(300)
        wait_until(lambda: len(patches(first["id"])) >= i, what=f"edit {i}")
    assert len(patches(first["id"])) == 12
    assert [m["id"] for m in beats()] == [first["id"]]
    assert "uptime: 1h" in beats()[0]["content"]
    # Someone deletes it: the next beat posts a new one and keeps it.
    req = urllib.request.Request(f"{fake.base_url}/channels/{cid}/messages/{first['id']}",
                                 method="DELETE",
                                 headers={"Authorization": "Bot " + fake.token,
                                          "User-Agent": "DiscordBot (https://x, 1)"})
    with _OPENER.open(req, timeout=10) as r:
        assert r.status == 204
    clock.advance(300)
    second = wait_until(lambda: beats() or None, what="a new heartbeat")[0]
    assert second["id"] != first["id"]
    clock.advance(300)
    wait_until(lambda: len(patches(second["id"])) >= 1, what="an edit of the new one")
    # ... also after a restart.
    s.stop()
    start(fake, souk_factory, clock)
    clock.advance(300)
    wait_until(lambda: len(patches(second["id"])) >= 2, what="an edit after the restart")
    assert [m["id"] for m in beats()] == [second["id"]]


def test_daily_summary_at_its_hour_across_dst_once_per_day(fake_discord, souk_factory,
                                                         tmp_path):
    fake = fake_discord
    clock = TestClock(tmp_path / "clock")
    # New York, 2027-03-14: clocks go from 02:00 EST to 03:00 EDT (07:00 UTC),
    # so 02:00 never happens that day; the summary comes when it ends.
    clock.set_unix(calendar.timegm((2027, 3, 14, 6, 50, 0)))
    s = start(fake, souk_factory, clock)
    g = guild(fake)
    cid, talk = text_channels(g)[1], text_channels(g)[0]
    reply = command(fake, "stats", "summary", channel=cid, hour=2, timezone="America/New_York")
    assert "at 02:00 America/New_York" in reply

    def summaries():
        return [m for m in fake.messages(cid)
                if any(e.get("title") == "Daily server stats" for e in m.get("embeds") or [])]

    for i in range(3):
        fake.message(f"hello {i}", channel_id=talk)
    time.sleep(2)
    clock.set_unix(calendar.timegm((2027, 3, 14, 6, 59, 30)))
    time.sleep(2)
    assert summaries() == []
    clock.set_unix(calendar.timegm((2027, 3, 14, 7, 0, 5)))
    first = wait_until(lambda: summaries() or None, what="the summary")[0]
    text = message_text(first)
    assert "Messages seen: 3" in text, text
    assert "Top commands: `/stats summary` × 1" in text, text
    # A restart the same day sends nothing more.
    s.stop()
    s = start(fake, souk_factory, clock)
    clock.advance(3600)
    time.sleep(3)
    assert len(summaries()) == 1
    # The next day at 02:00 EDT (06:00 UTC): the second one, counts reset.
    clock.set_unix(calendar.timegm((2027, 3, 15, 5, 59, 0)))
    time.sleep(2)
    assert len(summaries()) == 1
    clock.set_unix(calendar.timegm((2027, 3, 15, 6, 0, 5)))
    wait_until(lambda: len(summaries()) == 2, what="the second summary")
    assert "Messages seen: 0" in message_text(summaries()[1])


def test_a_failed_summary_is_retried_and_posted_once(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    clock = TestClock(tmp_path / "clock")
    clock.set_unix(calendar.timegm((2027, 6, 1, 8, 50, 0)))
    s = start(fake, souk_factory, clock)
    cid = text_channels(guild(fake))[1]
    reply = command(fake, "stats", "summary", channel=cid, hour=9, timezone="UTC")
    assert "at 09:00 UTC" in reply

    def summaries():
        return [m for m in fake.messages(cid)
                if any(e.get("title") == "Daily server stats" for e in m.get("embeds") or [])]

    def posts():
        return [r for r in fake.requests() if r["method"] == "POST"
                and r["path"].endswith(f"/channels/{cid}/messages")]

    time.sleep(2)
    # The first post of the day is refused (a permission missing for a while).
    fake.script_rest("POST", f"/channels/{cid}/messages$", [
        {"status": 403, "body": {"message": "Missing Permissions", "code": 50013}}])
    clock.set_unix(calendar.timegm((2027, 6, 1, 9, 0, 5)))
    wait_until(lambda: posts() or None, what="the first attempt")
    time.sleep(2)
    assert summaries() == [] and len(posts()) == 1
    # Not forgotten: it is tried again after a backoff, the same day.
    clock.advance(30)
    time.sleep(2)
    assert len(posts()) == 1
    clock.advance(60)
    wait_until(lambda: summaries() or None, what="the retried summary")
    # Posted once: a restart the same day sends nothing more.
    s.stop()
    s = start(fake, souk_factory, clock)
    clock.advance(3600)
    time.sleep(3)
    assert len(summaries()) == 1
    assert len(posts()) == 2


def test_usage_and_adaptive_polls(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    clock = TestClock(tmp_path / "clock")
    s = start(fake, souk_factory, clock, **{"poll": {"min": "1m", "max": "8m"}})
    port = http_port(s)
    g = guild(fake)
    cid = text_channels(g)[1]
    command(fake, "stats", "channels", online=cid)
    command(fake, "stats", "show")
    command(fake, "stats", "show")
    text = command(fake, "stats", "usage", days=7)
    assert "Command usage in this server, last 7 days" in text
    assert "1. `/stats show` × 2" in text and "`/stats channels` × 1" in text
    assert "3 commands by 1 active members" in text
    # Online counts are polled: every minute after a change, then slower.
    # 18 minutes (one-second ticks see each step), no change after the
    # first count: polls 1, 2, 4 and 8 minutes apart, not 18 of them.
    for _ in range(12):
        clock.advance(90)
        time.sleep(1.1)
    polls = [r for r in fake.requests() if r["path"] == f"/api/v10/guilds/{g['id']}"
             and "with_counts=true" in (r.get("query") or "")]
    assert 3 <= len(polls) <= 7, len(polls)
    wait_until(lambda: channel_name(fake, cid).startswith("Online: "), what="the online counter")
    m = metrics(port)
    assert metric(m, "souk_stats_polls_saved_total") >= 4
    assert metric(m, "souk_rest_queue_length") is not None
    assert metric(m, "souk_stats_polls_total", 'outcome="ok"') == len(polls)


def test_presence_rotates_within_discords_limit(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    clock = TestClock(tmp_path / "clock")
    start(fake, souk_factory, clock, presence={"activities": ["on {guilds} servers",
                                                             "{members} members"],
                                               "period": "15s", "type": "watching"})

    def names():
        return [(a["name"], a["type"]) for u in fake.state(rest_log=False)["actions"]["presence_updates"]
                for a in (u["d"].get("activities") or [])]

    wait_until(lambda: names(), what="the first activity")
    clock.advance(15)
    wait_until(lambda: len(names()) >= 2, what="the second activity")
    clock.advance(15)
    wait_until(lambda: len(names()) >= 3, what="the third activity")
    got = names()
    assert got[0] == ("on 1 servers", 3), got
    assert got[1][0].endswith(" members") and got[1][1] == 3, got
    assert got[2] == got[0], got
