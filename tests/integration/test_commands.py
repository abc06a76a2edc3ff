"""Commands end to end: the real souk against the fake Discord.

Slash command registration (matching the registry, not repeated on a
restart), a slash command, autocomplete, a button that pages /help, a stale
component, a modal submit, prefix commands with per-guild prefixes and
permissions, a slow command that is deferred and then edited, and the HTTP
interactions endpoint running a command."""
import json
import pathlib
import re
import sqlite3
import subprocess
import threading
import time

from conftest import souk_config
from soukproc import sanitized, souk_bin

WAIT = 60 if sanitized() else 20
MANAGE_GUILD = 1 << 5


def registered(fake):
    return [r for r in fake.requests()
            if r["method"] == "PUT" and re.search(r"/applications/\d+/commands$", r["path"])]


def callbacks(fake, iid):
    out = []
    for r in fake.requests():
        if r["method"] == "POST" and f"/interactions/{iid}/" in r["path"]:
            body = r.get("body")
            out.append(json.loads(body) if isinstance(body, str) else body)
    return out


def webhook_calls(fake, token):
    return [r for r in fake.requests() if token in r["path"] and r["path"].startswith(
        "/api/v10/webhooks/")]


def interaction(fake, iid):
    return next(i for i in fake.state(rest_log=False)["interactions"] if i["id"] == iid)


def message(fake, mid):
    return next(m for m in fake.messages() if m["id"] == mid)


def wait_callback(fake, iid):
    fake.wait_for(lambda _st: callbacks(fake, iid), timeout=WAIT, what=f"a callback for {iid}")
    return callbacks(fake, iid)[0]


def start(fake, souk_factory, name="souk", **overrides):
    s = souk_factory(fake, name=name,
                     config=souk_config(fake, f"{name}-data", **overrides) if overrides else None)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    # Owner-only commands answer the application's owners once souk has
    # learnt them (GET /oauth2/applications/@me after READY); REST sends are
    # spaced under the global limit, so that answer can come a few
    # milliseconds after READY.
    s.wait_log("owner-only commands answer", timeout=WAIT)
    return s


def restart(s):
    """Start the same process again, with the same config and data."""
    with s._cv:
        s.lines.clear()
    s.start()


def test_registration_matches_registry_and_is_not_repeated(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    s = start(fake, souk_factory)
    s.wait_log("registered", timeout=WAIT)
    puts = registered(fake)
    assert len(puts) == 1
    want = json.loads(subprocess.run([souk_bin(), "commands"], capture_output=True, text=True,
                                     check=True, cwd=tmp_path).stdout)
    sent = puts[0]["body"]
    sent = json.loads(sent) if isinstance(sent, str) else sent
    assert sent == want
    have = {c["name"]: c for c in fake.state(rest_log=False)["commands"]["global"]}
    assert set(have) == {c["name"] for c in want}
    assert {"ping", "help", "admin", "prefix"} <= set(have)
    # Owner-only and permission-gated commands are hidden from members by
    # default; guild-only ones are offered in guilds only.
    assert have["admin"]["default_member_permissions"] is not None
    assert have["prefix"]["contexts"] == [0]
    assert s.stop() == 0
    # The same set after a restart: nothing is sent again.
    restart(s)
    fake.wait("ready", count=2, timeout=WAIT)
    s.wait_log("unchanged since the last registration", timeout=WAIT)
    assert len(registered(fake)) == 1
    assert s.stop() == 0


def test_slash_command_autocomplete_and_refusals(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    s.wait_log("registered", timeout=WAIT)
    r = fake.interaction("ping")
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 4 and cb["data"]["content"].startswith("pong")
    assert cb["data"]["allowed_mentions"] == {"parse": []}
    assert interaction(fake, r["id"])["callback_after_ms"] < 3000
    # Autocomplete of /help's command option.
    r = fake.interaction("help", type=4, options=[
        {"name": "command", "type": 3, "value": "pre", "focused": True}])
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 8
    assert [c["value"] for c in cb["data"]["choices"]] == ["prefix"]
    # A member without Manage Server is refused, privately, and the handler
    # never ran (nothing was stored).
    r = fake.interaction("prefix", options=[
        {"name": "set", "type": 1, "options": [{"name": "value", "type": 3, "value": "?"}]}],
        permissions="0")
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 4 and cb["data"]["flags"] == 64
    assert "Manage Server" in cb["data"]["content"]
    # A bad option value is refused with the reason.
    r = fake.interaction("admin", options=[
        {"name": "usage", "type": 1, "options": [{"name": "days", "type": 4, "value": 99}]}])
    cb = wait_callback(fake, r["id"])
    assert cb["data"]["flags"] == 64
    assert "owners" in cb["data"]["content"] or "30" in cb["data"]["content"]
    assert s.stop() == 0


def test_buttons_page_help_and_stale_components_get_a_reply(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    r = fake.interaction("help", permissions=str(MANAGE_GUILD))
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 4 and cb["data"]["flags"] == 64
    rows = cb["data"]["components"]
    buttons = rows[0]["components"]
    assert [b["type"] for b in buttons] == [2, 2] and buttons[0]["disabled"] is True
    assert rows[1]["components"][0]["type"] == 3
    page1 = cb["data"]["embeds"][0]["title"]
    assert "(1/" in page1
    msg = message(fake, interaction(fake, r["id"])["original"])
    # Press "Next": the message is updated in place (type 7) to page 2.
    nxt = buttons[1]["custom_id"]
    r2 = fake.interaction(type=3, data={"custom_id": nxt, "component_type": 2}, message=msg,
                          permissions=str(MANAGE_GUILD))
    cb2 = wait_callback(fake, r2["id"])
    assert cb2["type"] == 7
    assert "(2/" in cb2["data"]["embeds"][0]["title"]
    # The select menu jumps to a page.
    sel = rows[1]["components"][0]
    r3 = fake.interaction(type=3, data={"custom_id": sel["custom_id"], "component_type": 3,
                                        "values": ["0"]}, message=msg,
                          permissions=str(MANAGE_GUILD))
    assert "(1/" in wait_callback(fake, r3["id"])["data"]["embeds"][0]["title"]
    # A button from before the command set changed (it counted 9 pages) is
    # stale: told so.
    stale_id = re.sub(r":\d+$", ":9", nxt)
    assert stale_id != nxt
    r4 = fake.interaction(type=3, data={"custom_id": stale_id, "component_type": 2}, message=msg)
    cb4 = wait_callback(fake, r4["id"])
    assert cb4["type"] == 4 and cb4["data"]["flags"] == 64
    assert "out of date" in cb4["data"]["content"]
    # A custom_id nobody handles (an old version's button) gets a clear reply.
    r5 = fake.interaction(type=3, data={"custom_id": "gone:42", "component_type": 2},
                          message=msg)
    cb5 = wait_callback(fake, r5["id"])
    assert cb5["type"] == 4 and cb5["data"]["flags"] == 64
    assert "expired" in cb5["data"]["content"]
    assert s.stop() == 0


def test_modal_sets_the_prefix_and_prefix_commands_follow(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    guild = fake.state(rest_log=False)["guilds"][0]
    r = fake.interaction("prefix", options=[{"name": "set", "type": 1}],
                         permissions=str(MANAGE_GUILD))
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 9
    modal = cb["data"]
    field = modal["components"][0]["components"][0]
    assert field["type"] == 4 and field["custom_id"] == "value"
    r2 = fake.interaction(type=5, permissions=str(MANAGE_GUILD), data={
        "custom_id": modal["custom_id"],
        "components": [{"type": 1, "components": [
            {"type": 4, "custom_id": "value", "value": "?"}]}]})
    cb2 = wait_callback(fake, r2["id"])
    assert cb2["type"] == 4 and "`?`" in cb2["data"]["content"]
    # Prefix commands now answer to "?" and not to "!".
    m = fake.message(content="?ping")["message"]["id"]
    fake.wait_for(lambda _st: any(x.get("message_reference", {}).get("message_id") == m
                              for x in fake.messages()), timeout=WAIT, what="a reply to ?ping")
    old = fake.message(content="!ping")["message"]["id"]
    # The guild owner may set a prefix by message (all permissions); a
    # member without Manage Server may not.
    owner = guild["owner_id"]
    refused = fake.message(content="?prefix set value:%")["message"]["id"]  # a plain member
    fake.wait_for(lambda _st: any(x.get("message_reference", {}).get("message_id") == refused
                              for x in fake.messages()), timeout=WAIT, what="the refusal")
    reply = next(x for x in fake.messages()
                 if x.get("message_reference", {}).get("message_id") == refused)
    assert "Manage Server" in reply["content"]
    fake.message(content='?prefix set value:"$"', author_id=owner)
    fake.wait_for(lambda _st: any("`$`" in (x.get("content") or "") for x in fake.messages()),
                  timeout=WAIT, what="the owner's prefix change")
    assert not any(x.get("message_reference", {}).get("message_id") == old
                   for x in fake.messages())
    assert s.stop() == 0
    # The prefix survives a restart (it is the setting commands.prefix, in
    # the store).
    restart(s)
    fake.wait("ready", count=2, timeout=WAIT)
    s.wait_log("1 setting value(s) loaded", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    m = fake.message(content="$ping")["message"]["id"]
    fake.wait_for(lambda _st: any(x.get("message_reference", {}).get("message_id") == m
                              for x in fake.messages()), timeout=WAIT, what="a reply to $ping")
    assert s.stop() == 0


def test_slow_command_is_deferred_then_edited(fake_discord, souk_factory):
    """/prefix set waits for the SQLite write lock, held here for 2 s: the
    runner defers after commands.defer_after and then edits the original
    response with the answer."""
    fake = fake_discord
    s = start(fake, souk_factory, commands={"defer_after": "300ms"})
    db = next(pathlib.Path(s.workdir).rglob("souk.db"))
    locked = threading.Event()

    def hold():
        c = sqlite3.connect(str(db), isolation_level=None, timeout=10)
        c.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(2.0)
        c.execute("ROLLBACK")
        c.close()

    t = threading.Thread(target=hold)
    t.start()
    locked.wait(5)
    r = fake.interaction("prefix", options=[
        {"name": "set", "type": 1, "options": [{"name": "value", "type": 3, "value": ">>"}]}],
        permissions=str(MANAGE_GUILD))
    cb = wait_callback(fake, r["id"])
    t.join()
    assert cb["type"] == 5
    it = interaction(fake, r["id"])
    assert it["callback_after_ms"] < 3000
    fake.wait_for(lambda _st: webhook_calls(fake, r["token"]), timeout=WAIT, what="the edit")
    edit = webhook_calls(fake, r["token"])[0]
    assert edit["method"] == "PATCH" and edit["path"].endswith("/messages/@original")
    assert "`>>`" in message(fake, it["original"])["content"]
    assert s.stop() == 0


def _signed(priv, body):
    ts = str(int(time.time()))
    return {"X-Signature-Ed25519": priv.sign(ts.encode() + body).hex(),
            "X-Signature-Timestamp": ts, "Content-Type": "application/json"}


def test_http_interaction_runs_a_command(fake_discord, souk_factory):
    import urllib.request
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    fake = fake_discord
    priv = Ed25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw).hex()
    s = start(fake, souk_factory, discord={"api_base": fake.base_url, "public_key": pub})
    line = s.wait_log("listening on", timeout=WAIT)[0]
    port = int(re.search(r":(\d+)\"?$", line.rstrip('"')).group(1))
    body = json.dumps({
        "type": 2, "id": "1300000000000000001", "application_id": fake.state()["application_id"],
        "token": "tok", "version": 1, "guild_id": "1300000000000000002",
        "channel_id": "1300000000000000003",
        "member": {"user": {"id": "1300000000000000004", "username": "x"}, "permissions": "0"},
        "data": {"id": "1", "name": "ping", "type": 1}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/interactions", data=body,
                                 headers=_signed(priv, body), method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        out = json.loads(resp.read())
    assert out["type"] == 4 and out["data"]["content"].startswith("pong")
    bad = dict(_signed(priv, body), **{"X-Signature-Ed25519": "00" * 64})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/interactions", data=body,
                                 headers=bad, method="POST")
    try:
        opener.open(req, timeout=10)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 401
    assert s.stop() == 0


def test_late_command_gets_an_apology_and_an_alert(fake_discord, souk_factory):
    """A handler still working after commands.timeout is answered for (the
    deferred message becomes an apology); the `command.late` error is posted
    to ops.alerts.channel once, and the handler's own late answer is
    dropped."""
    fake = fake_discord
    st = fake.state(rest_log=False)
    alerts = next(c["id"] for c in st["guilds"][0]["channels"] if c["type"] == 0)
    s = start(fake, souk_factory, commands={"defer_after": "200ms", "timeout": "1s"},
              ops={"alerts": {"channel": alerts, "min_severity": "medium"}})
    db = next(pathlib.Path(s.workdir).rglob("souk.db"))
    locked = threading.Event()

    def hold():
        c = sqlite3.connect(str(db), isolation_level=None, timeout=10)
        c.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(2.5)
        c.execute("ROLLBACK")
        c.close()

    t = threading.Thread(target=hold)
    t.start()
    locked.wait(5)
    r = fake.interaction("prefix", options=[
        {"name": "set", "type": 1, "options": [{"name": "value", "type": 3, "value": "%"}]}],
        permissions=str(MANAGE_GUILD))
    assert wait_callback(fake, r["id"])["type"] == 5
    fake.wait_for(lambda _st: interaction(fake, r["id"])["followups"], timeout=WAIT,
                  what="the apology")
    t.join()
    # The apology is private: a private follow-up says what happened, then
    # the public "thinking" message is deleted (in that order, so a failed
    # delete cannot lose the answer).
    fake.wait_for(lambda _st: len(webhook_calls(fake, r["token"])) >= 2, timeout=WAIT,
                  what="the delete")
    it = interaction(fake, r["id"])
    calls = [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in webhook_calls(fake, r["token"])]
    assert calls[0][0] == "POST" and calls[1] == ("DELETE", "@original")
    apology = message(fake, it["followups"][0])
    assert "took too long" in apology["content"] and apology["flags"] & 64
    fake.wait_for(lambda _st: any("command.late" in (m.get("content") or "")
                                  for m in fake.messages(alerts)), timeout=WAIT, what="the alert")
    # The write did go through once the lock was released, but the runner
    # never answered twice.
    time.sleep(1.0)
    assert len(webhook_calls(fake, r["token"])) == 2
    assert sum("command.late" in (m.get("content") or "") for m in fake.messages(alerts)) == 1
    assert s.stop() == 0


def test_a_prefix_is_counted_in_bytes(fake_discord, souk_factory):
    """A prefix longer than 8 bytes is refused, though it has only five
    characters: message commands could not use it, and the reply and
    /settings view would name a prefix that does not work."""
    fake = fake_discord
    s = start(fake, souk_factory)

    def set_prefix(value):
        r = fake.interaction("prefix", options=[{"name": "set", "type": 1, "options": [
            {"name": "value", "type": 3, "value": value}]}], permissions=str(MANAGE_GUILD))
        return wait_callback(fake, r["id"])["data"]["content"]

    def answered(content):
        m = fake.message(content=content)["message"]["id"]
        fake.wait_for(lambda _st: any(x.get("message_reference", {}).get("message_id") == m
                                  for x in fake.messages()), timeout=WAIT, what=content)

    assert "bytes" in set_prefix("\u00e9" * 5)
    answered("!ping")  # still "!"
    # Four of them (8 bytes) fit, and message commands follow.
    assert "`%s`" % ("\u00e9" * 4) in set_prefix("\u00e9" * 4)
    answered("\u00e9" * 4 + "ping")
    assert s.stop() == 0
    rows = sqlite3.connect(str(next(pathlib.Path(s.workdir).rglob("souk.db")))).execute(
        "SELECT value FROM settings WHERE key = 'commands.prefix'").fetchall()
    assert rows == [("\u00e9" * 4,)]


def test_slow_prefix_command_shows_typing_then_answers(fake_discord, souk_factory):
    """A message command has no "thinking" state: a slow one shows Discord's
    typing indicator in its channel, then the answer replies to it."""
    fake = fake_discord
    s = start(fake, souk_factory, commands={"defer_after": "200ms"})
    guild = fake.state(rest_log=False)["guilds"][0]
    db = next(pathlib.Path(s.workdir).rglob("souk.db"))
    locked = threading.Event()

    def hold():
        c = sqlite3.connect(str(db), isolation_level=None, timeout=10)
        c.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(1.5)
        c.execute("ROLLBACK")
        c.close()

    t = threading.Thread(target=hold)
    t.start()
    locked.wait(5)
    m = fake.message(content="!prefix set value:&", author_id=guild["owner_id"])["message"]
    fake.wait_for(lambda st: st["typing"], timeout=WAIT, what="the typing indicator")
    assert fake.state(rest_log=False)["typing"][0]["channel_id"] == m["channel_id"]
    fake.wait_for(lambda _st: any(x.get("message_reference", {}).get("message_id") == m["id"]
                                  for x in fake.messages()), timeout=WAIT, what="the answer")
    t.join()
    reply = next(x for x in fake.messages()
                 if x.get("message_reference", {}).get("message_id") == m["id"])
    assert "`&`" in reply["content"]
    assert s.stop() == 0


def test_registration_to_a_development_guild(fake_discord, souk_factory):
    """commands.register: guild puts the set on commands.dev_guild only
    (instant updates while developing), with its own stored hash."""
    fake = fake_discord
    gid = fake.state(rest_log=False)["guilds"][0]["id"]
    s = start(fake, souk_factory, commands={"register": "guild", "dev_guild": gid})
    s.wait_log("registered", timeout=WAIT)
    puts = [r for r in fake.requests() if r["method"] == "PUT" and "/commands" in r["path"]]
    assert len(puts) == 1 and puts[0]["path"].endswith(f"/guilds/{gid}/commands")
    st = fake.state(rest_log=False)["commands"]
    assert st["global"] == []
    assert {c["name"] for c in st["guild"][gid]} >= {"ping", "help", "buy", "market"}
    assert s.stop() == 0


def test_a_prefix_set_elsewhere_reaches_this_process(fake_discord, souk_factory):
    """Prefixes are the setting commands.prefix, in the store: one set by
    another process (written here straight into the shared SQLite file) is
    picked up when the settings are re-read (settings.refresh), run at once
    through /admin task-restart."""
    fake = fake_discord
    s = start(fake, souk_factory)
    guild = fake.state(rest_log=False)["guilds"][0]
    db = next(pathlib.Path(s.workdir).rglob("souk.db"))
    c = sqlite3.connect(str(db), isolation_level=None, timeout=10)
    c.execute("INSERT INTO settings (scope_id, key, value, set_by, updated_at) "
              "VALUES (?, 'commands.prefix', '~', 1, ?)", (int(guild["id"]), int(time.time() * 1000)))
    c.close()
    r = fake.interaction("admin", user_id=guild["owner_id"], options=[
        {"name": "task-restart", "type": 1,
         "options": [{"name": "task", "type": 3, "value": "settings.refresh"}]}])
    assert "will run again now" in wait_callback(fake, r["id"])["data"]["content"]

    def answered(mid):
        return any(x.get("message_reference", {}).get("message_id") == mid
                   for x in fake.messages())

    deadline = time.monotonic() + WAIT
    while True:
        m = fake.message(content="~ping")["message"]["id"]
        time.sleep(0.3)
        if answered(m):
            break
        assert time.monotonic() < deadline, "the new prefix never took effect"
    assert s.stop() == 0
