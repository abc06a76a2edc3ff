"""The economy, its Terms of Service, games, the setup wizards and the
admin commands through the real binary.

* `souk console` end to end: the ToS prompt in front of a coin command and
  the command going on after Accept, the welcome bonus once, /daily, /pay,
  the leaderboard, a new ToS version asked for again, roulette spun by a
  button press (the spin edits one message), a poll voted by presses,
  /setup user, aliases under the prefix, and the owners' audit.
* Against the fake Discord: the server wizard through every step with a
  bad answer at each, Back, Cancel and a restart in the middle; a poll's
  edits capped at one a second under 200 clicks in 10 s with every click
  acknowledged at once and the right final tally; two Accept clicks at
  once paying one bonus; and kill -9 while transfers and bets run, after
  which the totals are exact, on SQLite and on a throwaway PostgreSQL."""
import json
import os
import queue
import random
import re
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import souk_config
from pgserver import PgServer, PgUnavailable
from soukproc import sanitized, souk_bin

WAIT = 60 if sanitized() else 20
MANAGE_GUILD = 1 << 5
CONSOLE_USER = "100000000000000001"


# ---- the console -------------------------------------------------------------


class Console:
    """`souk console` with a pipe for input, read as it answers."""

    def __init__(self, tmp_path, cfg):
        (tmp_path / "c.yaml").write_text(cfg)
        env = dict(os.environ)
        env.pop("SOUK_DISCORD_TOKEN", None)
        self.proc = subprocess.Popen([souk_bin(), "console", "-c", str(tmp_path / "c.yaml")],
                                     cwd=tmp_path, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out = []
        self.seen = 0
        self.cv = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            with self.cv:
                self.out.append(line.rstrip("\n"))
                self.cv.notify_all()

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=WAIT):
        """Wait for a line matching pattern after the last one matched;
        returns the text from there to the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for i in range(self.seen, len(self.out)):
                    if rx.search(self.out[i]):
                        text = "\n".join(self.out[self.seen:i + 1])
                        self.seen = i + 1
                        return text
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r; output since:\n%s" % (
                        pattern, "\n".join(self.out[self.seen:])))
                self.cv.wait(min(left, 0.2))

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode


def console_cfg(extra=""):
    return ("core:\n  data_dir: ./d\neconomy:\n  roulette:\n    seed: 42\n    frames: 2\n"
            + extra)


def db_path(root):
    return next(Path(root).rglob("souk.db"))


def sql(root, q, *args):
    c = sqlite3.connect(str(db_path(root)), timeout=10)
    try:
        return c.execute(q, args).fetchall()
    finally:
        c.close()


def test_console_end_to_end(tmp_path):
    c = Console(tmp_path, console_cfg())
    try:
        # A coin command before accepting: the terms, with Accept / Decline.
        c.send("/balance")
        t = c.expect(r"^\[1\] Accept  \[2\] Decline")
        assert "Please read and accept the Terms of Service first." in t
        assert "Terms of Service, version 1" in t
        assert "Accept to continue with /balance." in t
        assert "Your first acceptance gives you 1,000 coins." in t
        # Accept: the bonus, then the waiting command answers.
        c.send("1")
        t = c.expect(r"^You have \*\*1,000\*\* coins\.")
        assert "Welcome: you received **1,000** coins." in t
        c.send("/balance")
        c.expect(r"^You have \*\*1,000\*\* coins\.")
        c.send("/daily")
        c.expect(r"^You claimed \*\*100\*\* coins\. Your balance: \*\*1,100\*\*\.")
        c.send("/daily")
        c.expect(r"already claimed your daily coins\. The next claim is in 2[34] h")
        c.send("/pay user:100000000000000042 amount:5000")
        c.expect(r"^You cannot pay 5,000 coins: you have \*\*1,100\*\*\.")
        c.send("/pay user:100000000000000001 amount:5")
        c.expect(r"^You cannot pay yourself\.")
        c.send("/pay user:100000000000000042 amount:100")
        c.expect(r"^You paid \*\*100\*\* coins to <@100000000000000042>\. Your balance: \*\*1,000")
        c.send("/coins leaderboard")
        t = c.expect(r"Page 1 of 1 . 2 users")
        assert "1. **console** — 1,000 coins" in t
        assert "2. <@100000000000000042> — 100 coins" in t
        c.send("/tosinfo")
        c.expect(r"^You accepted the Terms of Service version 1 on .*That is the current version")
        # A new version: the next coin command asks again; no second bonus.
        c.send('/coins publish-tos text:"Version two of the rules."')
        c.expect(r"^Published the Terms of Service version 2")
        c.send("/daily")
        t = c.expect(r"^\[1\] Accept  \[2\] Decline")
        assert "Terms of Service, version 2" in t and "Version two of the rules." in t
        c.send("1")
        t = c.expect(r"already claimed your daily coins")
        assert "Welcome" not in t
        c.send("/tosinfo")
        c.expect(r"version 2 on .*That is the current version")
        # Decline leaves coin commands closed, and says so.
        # Roulette: the bet with Spin; the press spins and edits one message.
        c.send("/roulette bet:red amount:200")
        t = c.expect(r"^\[1\] Spin  \[2\] Cancel")
        assert "stakes **200** coins on **red** (pays 1:1)" in t
        c.send("1")
        t = c.expect(r"message (\d+) edited:", timeout=WAIT)
        mid = re.search(r"message (\d+) edited", t).group(1)
        t = c.expect(r"^\[1\] Spin again  \[2\] Cancel", timeout=WAIT)
        assert "The wheel spins" in t
        assert "message %s edited" % mid in t
        res = re.search(r"The ball lands on \*\*(\d+)\*\*: \*\*(won|lost)\*\*", t)
        assert res, t
        bal = int(re.search(r"Balance: \*\*([0-9,]+)\*\*", t).group(1).replace(",", ""))
        assert bal == (1200 if res.group(2) == "won" else 800)
        # A poll voted by presses.
        c.send('/poll question:"Lunch?" options:"Pizza | Sushi | Salad"')
        t = c.expect(r"^\[4\] Close poll")
        assert "Poll: Lunch?" in t and "0 voters" in t
        c.send("2")
        t = c.expect(r"1 voter ", timeout=WAIT)
        assert "**Sushi** — 1 vote (100%)" in t
        # The same voter changes their mind.
        c.send("3")
        t = c.expect(r"1 voter ", timeout=WAIT)
        assert "**Salad** — 1 vote (100%)" in t and "**Sushi** — 0 votes" in t
        c.send("4")
        t = c.expect(r"Closed . 1 voter", timeout=WAIT)
        # Aliases under the prefix, listed by /help.
        c.send("!performance")
        c.expect(r"^\*\*Performance\*\*")
        c.send("!db health")
        c.expect(r"^\*\*Database: healthy\*\*")
        c.send("/help command:admin")
        t = c.expect(r"Who: Only the bot's owners")
        assert "(also `!performance`)" in t and "(also `!cache clear`)" in t
        # The owners' audit: nothing created or lost.
        c.send("/coins grant user:100000000000000042 amount:50 reason:prize")
        c.expect(r"^Granted \*\*50\*\* coins to <@100000000000000042> \(prize\)")
        c.send("/coins take user:100000000000000042 amount:500 reason:fine")
        c.expect(r"has only \*\*150\*\* coins; nothing was taken")
        c.send("/coins audit")
        t = c.expect(r"pending bets 0")
        assert "Coin audit: consistent" in t
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
    rows = sql(tmp_path, "SELECT SUM(balance) FROM economy_balances")
    audit = sql(tmp_path, "SELECT SUM(amount) FROM economy_audit")
    assert rows == audit
    kinds = dict(sql(tmp_path, "SELECT kind, COUNT(*) FROM economy_audit GROUP BY kind"))
    assert kinds["bonus"] == 1 and kinds["daily"] == 1 and kinds["bet"] == 1
    assert kinds["pay"] == 2 and kinds["grant"] == 1 and "take" not in kinds
    # `souk db forget-user` (no module runs) reaches the economy, and the
    # audit still adds up: the payee's coins leave with a row of their own,
    # their side of the transfer stays under an anonymous id.
    payee = 100000000000000042
    r = subprocess.run([souk_bin(), "db", "forget-user", str(payee), "-c",
                        str(tmp_path / "c.yaml")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=WAIT)
    assert r.returncode == 0, r.stderr
    assert sql(tmp_path, "SELECT COUNT(*) FROM economy_audit WHERE user_id = ? OR other_id = ? "
                         "OR actor_id = ?", payee, payee, payee) == [(0,)]
    assert sql(tmp_path, "SELECT COUNT(*) FROM economy_balances WHERE user_id = ?",
               payee) == [(0,)]
    assert sql(tmp_path, "SELECT SUM(balance) FROM economy_balances") == \
        sql(tmp_path, "SELECT SUM(amount) FROM economy_audit")
    assert sql(tmp_path, "SELECT SUM(amount) FROM economy_audit WHERE kind = 'pay'") == [(0,)]
    assert sql(tmp_path, "SELECT amount FROM economy_audit WHERE kind = 'take'") == [(-150,)]


def test_console_publishes_terms_only_from_the_terms_directory(tmp_path):
    """An owner's account is not the operator: `file:` names a plain file of
    economy.tos_dir, never a path, a hidden file or a link, and no text
    holding a secret is published."""
    terms = tmp_path / "terms"
    terms.mkdir()
    (terms / "v2.txt").write_text("Version two, from a file.\n")
    (terms / ".env").write_text("SOUK_DISCORD_TOKEN=x\n")
    (terms / "leak.txt").write_text("token: MTA1MTE1MjgwMzQxMzM2MDY0Mg.GhJ2kL."
                                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL\n")
    os.symlink(str(tmp_path / "c.yaml"), str(terms / "link.txt"))
    c = Console(tmp_path, console_cfg("  tos_dir: %s\n" % terms))
    try:
        for name in ("/etc/passwd", "../c.yaml", ".env"):
            c.send("/coins publish-tos file:%s" % name)
            c.expect(r"^Give the name of a file in economy\.tos_dir")
        c.send("/coins publish-tos file:link.txt")
        c.expect(r"never a link\. Nothing was published\.")
        c.send("/coins publish-tos file:leak.txt")
        c.expect(r"^Those terms contain a secret")
        c.send('/coins publish-tos text:"SOUK_DISCORD_TOKEN=MTA1MTE1MjgwMzQxMzM2MDY0Mg.GhJ2kL.'
               'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"')
        c.expect(r"^Those terms contain a secret")
        c.send("/coins publish-tos file:v2.txt")
        c.expect(r"^Published the Terms of Service version 2")
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
    assert sql(tmp_path, "SELECT version, body FROM economy_tos ORDER BY version")[1:] == [
        (2, "Version two, from a file.")]
    # Without economy.tos_dir, no file is read at all.
    c = Console(tmp_path, console_cfg())
    try:
        c.send("/coins publish-tos file:v2.txt")
        c.expect(r"^Publishing from a file is off")
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()


def test_console_decline_and_user_wizard(tmp_path):
    c = Console(tmp_path, console_cfg())
    try:
        c.send("/daily")
        c.expect(r"^\[1\] Accept  \[2\] Decline")
        c.send("2")
        c.expect(r"You declined the Terms of Service\. Coin commands stay unavailable")
        c.send("/balance")
        c.expect(r"^\[1\] Accept  \[2\] Decline")
        # /setup user: a menu, a form with a bad then a good answer.
        c.send("/setup user")
        t = c.expect(r"Cancel$")
        steps = int(re.search(r"Your setup — Alerts \(step 1 of (\d+)\)", t).group(1))
        assert steps >= 3
        c.send("1.2")
        c.expect(r"Saved \*\*Alerts in direct messages\*\*")
        c.expect(r"Cancel$")
        c.send("3")
        c.expect(r"Time zone \(step 2 of %d\)" % steps)
        c.expect(r"Cancel$")
        c.send("2")
        c.expect(r"^Time zone:")
        c.send("Mars/Olympus")
        t = c.expect(r"Nothing on this step was changed")
        assert "expected an IANA time zone" in t
        c.expect(r"Cancel$")
        c.send("2")
        c.expect(r"^Time zone:")
        c.send("Asia/Tokyo")
        t = c.expect(r"Time zone\*\*: Asia/Tokyo \*\(set by you\)\*")
        c.expect(r"Cancel$")
        c.send("3")
        c.expect(r"Display \(step 3 of %d\)" % steps)
        c.expect(r"Cancel$")
        # Other modules' steps may follow (a test build's own module adds
        # one): Next through them; the last step's third button is Finish.
        c.send("3")
        for _ in range(steps - 3):
            c.expect(r"Cancel$")
            c.send("3")
        t = c.expect(r"Change any of them later")
        assert "Setup complete" in t and "**Time zone**: Asia/Tokyo" in t
        c.send("/settings view module:setup")
        t = c.expect(r"setup.display")
        assert "`setup.timezone` **Asia/Tokyo** — set by you" in t
        assert "`setup.dm_alerts` **off** — set by you" in t
        c.send("/settings set key:economy.enabled value:off")
        c.expect(r"^\*\*Economy\*\* is now off \(was on\)\.")
        c.send("/daily")
        c.expect(r"^The economy is turned off in this server\.")
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
    # The operator sees the same values, with where they come from.
    r = subprocess.run([souk_bin(), "settings", "user", CONSOLE_USER, "-c", str(tmp_path / "c.yaml")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    assert re.search(r"setup\.timezone +Asia/Tokyo +\(set\)", r.stdout), r.stdout
    assert re.search(r"setup\.display +normal +\(default\)", r.stdout), r.stdout
    r = subprocess.run([souk_bin(), "settings", "guild", "100000000000000002", "-c",
                        str(tmp_path / "c.yaml")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=WAIT)
    assert re.search(r"economy\.enabled +false +\(set\)", r.stdout), r.stdout
    assert re.search(r"market\.start_cash +1000000\.00 +\(config file\)|market\.start_cash +"
                     r"1000000\.00 +\(default\)", r.stdout), r.stdout


# ---- against the fake Discord ----------------------------------------------------------


def callbacks(fake, iid):
    out = []
    for r in fake.requests():
        if r["method"] == "POST" and f"/interactions/{iid}/" in r["path"]:
            body = r.get("body")
            out.append(json.loads(body) if isinstance(body, str) else body)
    return out


def wait_callback(fake, iid):
    fake.wait_for(lambda _st: callbacks(fake, iid), timeout=WAIT, what=f"a callback for {iid}")
    return callbacks(fake, iid)[0]


def start(fake, souk_factory, name="souk", **overrides):
    s = souk_factory(fake, name=name, config=souk_config(fake, f"{name}-data", **overrides))
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    s.wait_log("owner-only commands answer", timeout=WAIT)
    return s


def restart(s):
    with s._cv:
        s.lines.clear()
    s.start()


def text_of(cb):
    """Content and embed text of a callback's message."""
    d = cb.get("data") or {}
    parts = [d.get("content") or ""]
    for e in d.get("embeds") or []:
        parts += [e.get("title") or "", e.get("description") or "",
                  (e.get("footer") or {}).get("text") or ""]
    return "\n".join(parts)


def custom_ids(cb):
    out = []
    for row in (cb.get("data") or {}).get("components") or []:
        for comp in row.get("components") or []:
            if comp.get("custom_id"):
                out.append(comp["custom_id"])
    return out


def press(fake, custom_id, message_id, user_id=None, values=None, permissions=None):
    data = {"custom_id": custom_id, "component_type": 3 if values is not None else 2}
    if values is not None:
        data["values"] = values
    kw = {"type": 3, "data": data, "message": {"id": message_id}}
    if user_id:
        kw["user_id"] = user_id
    if permissions is not None:
        kw["permissions"] = str(permissions)
    return fake.interaction(**kw)


def submit(fake, custom_id, fields, message_id=None, permissions=None):
    data = {"custom_id": custom_id, "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
        for k, v in fields.items()]}
    kw = {"type": 5, "data": data}
    if message_id:
        kw["message"] = {"id": message_id}
    if permissions is not None:
        kw["permissions"] = str(permissions)
    return fake.interaction(**kw)


def test_server_wizard_every_step_bad_answers_back_cancel_restart(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    perms = MANAGE_GUILD

    r = fake.interaction("setup", options=[{"name": "server", "type": 1}], permissions=str(perms))
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 4 and cb["data"]["flags"] & 64  # ephemeral
    # The prefix, the market and the economy, then the channels (the stats
    # and scanner modules', a test build's own) and any other module's
    # steps.
    steps = int(re.search(r"Server setup — Server \(step 1 of (\d+)\)", text_of(cb)).group(1))
    assert steps >= 3

    def step(cb, n):
        assert "(step %d of %d)" % (n, steps) in text_of(cb), text_of(cb)

    step(cb, 1)
    assert "Command prefix" in text_of(cb)
    msg = "1300000000000000001"  # the wizard's message, as Discord names it
    ids = custom_ids(cb)
    edit = next(i for i in ids if ":e:" in i)
    # Step 1, the prefix: a form; a bad answer (too long) changes nothing.
    r = press(fake, edit, msg, permissions=perms)
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 9
    form = cb["data"]["custom_id"]
    r = submit(fake, form, {"f0": "waytoolongprefix"}, msg, perms)
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 7  # the wizard's message is replaced
    assert "Command prefix**: " in text_of(cb) and "Nothing on this step was changed" in \
        text_of(cb)
    step(cb, 1)
    r = submit(fake, form, {"f0": "a b"}, msg, perms)
    assert "Nothing on this step was changed" in text_of(wait_callback(fake, r["id"]))
    r = submit(fake, form, {"f0": "."}, msg, perms)
    cb = wait_callback(fake, r["id"])
    assert "Saved." in text_of(cb) and "**Command prefix**: . *(set by an admin)*" in text_of(cb)
    # Next: the market.
    r = press(fake, next(i for i in custom_ids(cb) if ":n:" in i), msg, permissions=perms)
    cb = wait_callback(fake, r["id"])
    step(cb, 2)
    assert "Market" in text_of(cb) and "Starting cash" in text_of(cb)
    ids = custom_ids(cb)
    pick = next(i for i in ids if ":v:" in i)
    # A forged menu value is refused like a bad answer.
    r = press(fake, pick, msg, values=["bogus"], permissions=perms)
    cb = wait_callback(fake, r["id"])
    assert "Price source of the next season**: expected" in text_of(cb)
    r = press(fake, pick, msg, values=["sim"], permissions=perms)
    cb = wait_callback(fake, r["id"])
    assert "Saved **Price source of the next season**" in text_of(cb)
    edit = next(i for i in custom_ids(cb) if ":e:" in i)
    r = press(fake, edit, msg, permissions=perms)
    form = wait_callback(fake, r["id"])["data"]["custom_id"]
    r = submit(fake, form, {"f0": "lots", "f1": "1.50"}, msg, perms)
    cb = wait_callback(fake, r["id"])
    assert "Starting cash**: expected" in text_of(cb)
    assert "Commission per trade**: 0.00" in text_of(cb)  # all or nothing
    r = submit(fake, form, {"f0": "2,500", "f1": "1.50"}, msg, perms)
    cb = wait_callback(fake, r["id"])
    assert "**Starting cash**: 2,500.00 *(set by an admin)*" in text_of(cb)
    # Back, and a press on the old message shows where the wizard is.
    back = next(i for i in custom_ids(cb) if ":b:" in i)
    nxt = next(i for i in custom_ids(cb) if ":n:" in i)
    r = press(fake, back, msg, permissions=perms)
    step(wait_callback(fake, r["id"]), 1)
    r = press(fake, nxt, msg, permissions=perms)  # pressed on step 2's message
    cb = wait_callback(fake, r["id"])
    assert "older message" in text_of(cb)
    step(cb, 1)
    r = press(fake, next(i for i in custom_ids(cb) if ":n:" in i), msg, permissions=perms)
    step(wait_callback(fake, r["id"]), 2)
    # A restart in the middle: /setup resumes at step 2.
    assert s.stop() == 0
    restart(s)
    fake.wait("ready", count=2, timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    r = fake.interaction("setup", options=[{"name": "server", "type": 1}], permissions=str(perms))
    cb = wait_callback(fake, r["id"])
    step(cb, 2)
    assert "Resuming where you left off." in text_of(cb)
    assert "**Starting cash**: 2,500.00" in text_of(cb)  # kept across the restart
    r = press(fake, next(i for i in custom_ids(cb) if ":n:" in i), msg, permissions=perms)
    cb = wait_callback(fake, r["id"])
    step(cb, 3)
    pick = next(i for i in custom_ids(cb) if ":v:" in i)
    r = press(fake, pick, msg, values=["maybe"], permissions=perms)
    assert "**Economy**: expected" in text_of(wait_callback(fake, r["id"]))
    r = press(fake, pick, msg, values=["false"], permissions=perms)
    cb = wait_callback(fake, r["id"])
    assert "**Economy**: off" in text_of(cb)
    if steps >= 4:
        # A channel: one the guild does not have is refused, one it has
        # (where the bot may post) is taken.
        r = press(fake, next(i for i in custom_ids(cb) if ":n:" in i), msg, permissions=perms)
        cb = wait_callback(fake, r["id"])
        step(cb, 4)
        r = press(fake, next(i for i in custom_ids(cb) if ":e:" in i), msg, permissions=perms)
        form = wait_callback(fake, r["id"])["data"]["custom_id"]
        r = submit(fake, form, {"f0": "<#1234567890123456789>"}, msg, perms)
        cb = wait_callback(fake, r["id"])
        assert "does not exist in this server, or I cannot see it and post there" in text_of(cb)
        chan = next(c["id"] for c in fake.state(rest_log=False)["guilds"][0]["channels"]
                    if c["type"] == 0)
        r = submit(fake, form, {"f0": "<#%s>" % chan}, msg, perms)
        cb = wait_callback(fake, r["id"])
        assert "Saved." in text_of(cb) and "<#%s>" % chan in text_of(cb)
    # The steps of other modules, in order, to the end.
    for n in range(5, steps + 1):
        r = press(fake, next(i for i in custom_ids(cb) if ":n:" in i), msg, permissions=perms)
        cb = wait_callback(fake, r["id"])
        step(cb, n)
    fin = next(i for i in custom_ids(cb) if ":n:" in i)
    r = press(fake, fin, msg, permissions=perms)
    cb = wait_callback(fake, r["id"])
    assert "Setup complete" in text_of(cb) and not custom_ids(cb)
    # Without Manage Server, a press is refused.
    r = press(fake, fin, msg, permissions=0)
    assert "Manage Server" in text_of(wait_callback(fake, r["id"]))
    # Pressing the finished wizard again: it has ended.
    r = press(fake, fin, msg, permissions=perms)
    assert "has ended or expired" in text_of(wait_callback(fake, r["id"]))
    # Started again, then cancelled.
    r = fake.interaction("setup", options=[{"name": "server", "type": 1}], permissions=str(perms))
    cb = wait_callback(fake, r["id"])
    step(cb, 1)
    r = press(fake, next(i for i in custom_ids(cb) if ":x:" in i), msg, permissions=perms)
    assert "Setup cancelled" in text_of(wait_callback(fake, r["id"]))
    # What was set took effect: the prefix, the economy off, the market.
    m = fake.message(content=".ping")["message"]["id"]
    fake.wait_for(lambda _st: any(x.get("message_reference", {}).get("message_id") == m
                                  for x in fake.messages()), timeout=WAIT, what="a reply to .ping")
    r = fake.interaction("balance")
    assert "turned off in this server" in text_of(wait_callback(fake, r["id"]))
    assert s.stop() == 0
    data = Path(s.workdir)
    assert sql(data, "SELECT start_cash_cents, commission_cents FROM market_settings") == \
        [(250000, 150)]


def accept_tos(fake, user_id):
    """Run /balance as user_id and press Accept on the terms."""
    r = fake.interaction("balance", user_id=user_id)
    cb = wait_callback(fake, r["id"])
    acc = next(i for i in custom_ids(cb) if i.startswith("eco:tos:a:"))
    r = press(fake, acc, "1300000000000000002", user_id=user_id)
    return wait_callback(fake, r["id"])


def test_poll_edits_are_capped_and_the_tally_is_right(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    guild = fake.state(rest_log=False)["guilds"][0]
    fake.post("/_fake/guilds/%s/members" % guild["id"], {"add": 40})
    members = players_of(fake, guild)
    r = fake.interaction("poll", options=[
        {"name": "question", "type": 3, "value": "Best coin?"},
        {"name": "options", "type": 3, "value": "Gold | Silver | Bronze"}])
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 4
    it = next(i for i in fake.state(rest_log=False)["interactions"] if i["id"] == r["id"])
    msg = it["original"]
    votes = [i for i in custom_ids(cb) if ":v:" in i]
    assert len(votes) == 3
    voters = members[:40]
    rng = random.Random(7)
    final = {}
    start_req = len(fake.requests())
    ids = []
    t0 = time.monotonic()
    for k in range(200):
        u = voters[k % len(voters)]
        choice = rng.randrange(3)
        final[u] = choice
        ids.append(press(fake, votes[choice], msg, user_id=u)["id"])
        # 200 clicks over about 10 s.
        time.sleep(max(0, t0 + (k + 1) * 0.05 - time.monotonic()))
    # Every click acknowledged at once with a deferred update (type 6).
    deadline = time.monotonic() + WAIT
    while True:
        its = {i["id"]: i for i in fake.state(rest_log=False)["interactions"]}
        if all(its[i]["responded"] for i in ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for i in ids:
        assert its[i]["response_type"] == 6
        assert its[i]["callback_after_ms"] < 3000
    want = [sum(1 for c in final.values() if c == k) for k in range(3)]
    expect = "**Gold** — %d vote" % want[0]

    def settled(_st):
        m = next(x for x in fake.messages() if x["id"] == msg)
        d = (m.get("embeds") or [{}])[0].get("description") or ""
        return d if expect in d and "**Silver** — %d vote" % want[1] in d and \
            "**Bronze** — %d vote" % want[2] in d else None

    desc = fake.wait_for(settled, timeout=WAIT, what="the final tally")
    assert "40 voters" in next(x for x in fake.messages() if x["id"] == msg)["embeds"][0][
        "footer"]["text"]
    edits = [q for q in fake.requests(start_req)
             if q["method"] == "PATCH" and q["path"].endswith("/messages/%s" % msg)]
    took = edits[-1]["at"] - edits[0]["at"]
    # At most one edit a second (the fake's clock sees them arrive), and
    # far fewer edits than clicks.
    gaps = [b["at"] - a["at"] for a, b in zip(edits, edits[1:])]
    assert len(edits) <= took + 2, (len(edits), took)
    assert min(gaps) >= 0.9, gaps
    assert 5 <= len(edits) < 40
    print("poll: %d clicks -> %d edits over %.1f s; final %s" % (200, len(edits), took, want))
    assert s.stop() == 0


def test_two_accept_clicks_pay_the_bonus_once(fake_discord, souk_factory):
    fake = fake_discord
    s = start(fake, souk_factory)
    r = fake.interaction("balance")
    cb = wait_callback(fake, r["id"])
    acc = next(i for i in custom_ids(cb) if i.startswith("eco:tos:a:"))
    user = next(i for i in fake.state(rest_log=False)["interactions"] if i["id"] == r["id"])[
        "user_id"]
    out = []
    ths = [threading.Thread(target=lambda: out.append(press(fake, acc, "1300000000000000003")))
           for _ in range(2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    texts = [text_of(wait_callback(fake, x["id"])) for x in out]
    assert sum("Welcome" in t for t in texts) <= 1
    r = fake.interaction("balance", user_id=user)
    assert "You have **1,000** coins." in text_of(wait_callback(fake, r["id"]))
    assert s.stop() == 0
    assert sql(s.workdir, "SELECT COUNT(*), SUM(amount) FROM economy_audit") == [(1, 1000)]


def test_a_kept_command_naming_a_bot_is_not_run_on_accept(fake_discord, souk_factory):
    """/pay to a bot by someone who has not accepted the Terms yet: the
    command kept for after Accept is text, which does not say the payee is
    a bot, so it must not be kept (the handler refuses bots only when it
    knows)."""
    fake = fake_discord
    s = start(fake, souk_factory)
    bot = "1300000000000000777"
    data = {"name": "pay", "type": 1,
            "options": [{"name": "user", "type": 6, "value": bot},
                        {"name": "amount", "type": 4, "value": 25}],
            "resolved": {"users": {bot: {"id": bot, "username": "otherbot",
                                         "discriminator": "0", "bot": True}}}}
    r = fake.interaction(data=data)
    cb = wait_callback(fake, r["id"])
    acc = next(i for i in custom_ids(cb) if i.startswith("eco:tos:a:"))
    user = next(i for i in fake.state(rest_log=False)["interactions"] if i["id"] == r["id"])[
        "user_id"]
    texts = text_of(wait_callback(fake, press(fake, acc, "1300000000000000003",
                                              user_id=user)["id"]))
    assert "You accepted the Terms of Service" in texts, texts
    # Asked again once accepted, the handler sees the bot and refuses.
    r = fake.interaction(data=data, user_id=user)
    assert "Bots cannot hold coins" in text_of(wait_callback(fake, r["id"]))
    assert s.stop() == 0
    assert sql(s.workdir, "SELECT COUNT(*) FROM economy_audit WHERE kind = 'pay'") == [(0,)]
    assert sql(s.workdir, "SELECT balance FROM economy_balances WHERE user_id = ?",
               int(user)) == [(1000,)]


def reply_to(fake, message_id):
    """The bot's reply to a prefix message, once it is there."""
    def find(_st=None):
        return next((x for x in fake.messages()
                     if (x.get("message_reference") or {}).get("message_id") == message_id), None)
    fake.wait_for(find, timeout=WAIT, what="a reply to message %s" % message_id)
    return find()


def test_a_payee_typed_as_a_plain_id_is_looked_up_and_a_bot_refused(fake_discord, souk_factory):
    """`!pay <id> 50` names the payee by id: no mention, no resolved data,
    so nothing says it is a bot until souk asks Discord (GET /users/{id})."""
    fake = fake_discord
    guild = fake.state(rest_log=False)["guilds"][0]
    fake.post("/_fake/guilds/%s/members" % guild["id"], {"add": 1, "bots": 1})
    s = start(fake, souk_factory)
    payer, person, bot = players_of(fake, guild)[-3:]
    accept_tos(fake, payer)
    m = fake.message(content="!pay %s 50" % bot, author_id=payer)["message"]["id"]
    assert "Bots cannot hold coins" in reply_to(fake, m)["content"]
    m = fake.message(content="!pay %s 50" % person, author_id=payer)["message"]["id"]
    assert "You paid **50** coins" in reply_to(fake, m)["content"]
    m = fake.message(content="!pay 1300000000000000999 50", author_id=payer)["message"]["id"]
    assert "There is no Discord user" in reply_to(fake, m)["content"]
    def lookups():
        return [r["path"] for r in fake.requests()
                if r["method"] == "GET" and re.search(r"/users/\d+$", r["path"])]
    assert len(lookups()) == 3, lookups()
    # A slash command carries resolved users: no lookup for those.
    r = fake.interaction("pay", user_id=payer, options=[
        {"name": "user", "type": 6, "value": bot}, {"name": "amount", "type": 4, "value": 5}])
    assert "Bots cannot hold coins" in text_of(wait_callback(fake, r["id"]))
    assert len(lookups()) == 3, lookups()
    assert s.stop() == 0
    assert sql(s.workdir, "SELECT user_id, amount FROM economy_audit WHERE kind = 'pay' "
                          "ORDER BY amount") == [(int(payer), -50), (int(person), 50)]
    assert sql(s.workdir, "SELECT COUNT(*) FROM economy_balances WHERE user_id = ?",
               int(bot)) == [(0,)]


@pytest.fixture
def pg_server():
    """A throwaway PostgreSQL server, stopped after the test."""
    pg = PgServer()
    try:
        pg.start()
    except PgUnavailable as e:
        pg.stop()
        pytest.skip(str(e))
    yield pg
    pg.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill9_during_transfers_and_bets_keeps_the_totals(fake_discord, souk_factory, request,
                                                         backend):
    fake = fake_discord
    guild = fake.state(rest_log=False)["guilds"][0]
    fake.post("/_fake/guilds/%s/members" % guild["id"], {"add": 6})
    owner = guild["owner_id"]
    store = {}
    if backend == "postgres":
        # Row locks, isolation and the recovery's lock order differ from
        # SQLite's one writer: the invariant must hold on both.
        pg = request.getfixturevalue("pg_server")
        store = {"store": {"url": pg.create_db("souk")}}
    s = start(fake, souk_factory, commands={"owners": [owner]},
              economy={"recover_after": "10s", "roulette": {"frames": 3}}, **store)
    if backend == "postgres":
        def sql(_root, q, *args):
            return pg.query(q, *args, db="souk")
    else:
        sql = globals()["sql"]
    players = players_of(fake, guild)[:6]
    for u in players:
        accept_tos(fake, u)
    # Coins to move: a grant each.
    for u in players:
        r = fake.interaction("coins", user_id=owner, options=[{"name": "grant", "type": 1, "options": [
            {"name": "user", "type": 6, "value": u}, {"name": "amount", "type": 4, "value": 500},
            {"name": "reason", "type": 3, "value": "seed"}]}])
        assert "Granted" in text_of(wait_callback(fake, r["id"]))
    # A roulette message per player to spin on.
    spins = {}
    for u in players:
        r = fake.interaction("roulette", user_id=u, options=[
            {"name": "bet", "type": 3, "value": "red"}, {"name": "amount", "type": 4, "value": 10}])
        wait_callback(fake, r["id"])
        it = next(i for i in fake.state(rest_log=False)["interactions"] if i["id"] == r["id"])
        spins[u] = it["original"]
    stop = threading.Event()
    rng = random.Random(3)

    def traffic():
        k = 0
        while not stop.is_set():
            a, b = rng.sample(players, 2)
            try:
                if k % 3 == 2:
                    tok = "%016x" % rng.getrandbits(64)
                    press(fake, "eco:rl:s:%s:%s:%d:red" % (a, tok, 1 + k % 7), spins[a], user_id=a)
                else:
                    fake.interaction("pay", user_id=a, options=[
                        {"name": "user", "type": 6, "value": b},
                        {"name": "amount", "type": 4, "value": 1 + k % 9}])
                    fake.interaction("pay", user_id=b, options=[
                        {"name": "user", "type": 6, "value": a},
                        {"name": "amount", "type": 4, "value": 1 + k % 5}])
            except Exception:
                pass
            k += 1

    ths = [threading.Thread(target=traffic) for _ in range(3)]
    for t in ths:
        t.start()
    time.sleep(3.0)
    s.kill()  # kill -9 with transfers and spins in flight
    stop.set()
    for t in ths:
        t.join()
    pending = sql(s.workdir, "SELECT COUNT(*) FROM economy_bets WHERE state = 'pending'")[0][0]
    restart(s)
    fake.wait("ready", count=2, timeout=WAIT)
    # The recovery settles what the dead process left pending.
    deadline = time.monotonic() + 60
    while sql(s.workdir, "SELECT COUNT(*) FROM economy_bets WHERE state = 'pending'")[0][0]:
        assert time.monotonic() < deadline, "pending bets were never settled"
        time.sleep(1)
    if pending:
        s.wait_log("bet(s) an interrupted spin left pending", timeout=WAIT)
    assert s.stop() == 0
    w = s.workdir
    total = sql(w, "SELECT SUM(balance) FROM economy_balances")[0][0]
    k = dict(sql(w, "SELECT kind, SUM(amount) FROM economy_audit GROUP BY kind"))
    grants, bonus = k.get("grant", 0), k.get("bonus", 0)
    takes, daily = k.get("take", 0), k.get("daily", 0)
    stakes, wins = k.get("bet", 0), k.get("win", 0)
    assert k.get("pay", 0) == 0
    assert total == grants + takes + bonus + daily + stakes + wins
    assert total == 6 * 500 + 6 * 1000 + stakes + wins
    # Every bet staked once, and won (paid) at most once, exactly as recorded.
    bets = sql(w, "SELECT id, stake, payout, state FROM economy_bets")
    for bid, stake, payout, state in bets:
        assert state == "settled"
        rows = sql(w, "SELECT kind, amount FROM economy_audit WHERE other_id = ? AND kind IN "
                      "('bet', 'win')", bid)
        assert sorted(rows) == sorted([("bet", -stake)] + ([("win", payout)] if payout else []))
    # Each user's audit trail chains to their balance.
    for (u, bal) in sql(w, "SELECT user_id, balance FROM economy_balances"):
        chain = sql(w, "SELECT balance_before, balance_after FROM economy_audit WHERE user_id = ? "
                       "ORDER BY id", u)
        prev = 0
        for before, after in chain:
            assert before == prev
            prev = after
        assert prev == bal
    print("kill -9 (%s): %d bets (%d pending at the kill), %d transfers, total %d" % (
        backend, len(bets), pending, sql(w, "SELECT COUNT(*) FROM economy_audit WHERE kind = 'pay'")[0][0]
        // 2, total))


def players_of(fake, guild):
    """Members of the guild besides its owner and the bot."""
    st = fake.state(rest_log=False)
    g = next(x for x in st["guilds"] if x["id"] == guild["id"])
    ids = g["member_ids"]
    return [m for m in ids if m not in (guild["owner_id"], fake.application_id,
                                        fake.bot_user_id)]
