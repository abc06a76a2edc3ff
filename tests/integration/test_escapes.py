"""Control characters a user typed are shown escaped wherever souk echoes
them: in Discord replies (the runner's one delivery point) and in the
console (a terminal that would obey them)."""
import os
import subprocess

from soukproc import sanitized, souk_bin

WAIT = 40 if sanitized() else 15
ESC = "\x1b"


def test_console_shows_escape_sequences_escaped(tmp_path):
    (tmp_path / "c.yaml").write_text("core:\n  data_dir: ./d\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUK_") or k == "SOUK_BIN"}
    script = (f"/nosuch{ESC}[2J{ESC}[31m\n"
              f"/help command:x{ESC}]0;owned\x07\n"
              f"/ping now{ESC}[5m\x9b\n")
    r = subprocess.run([souk_bin(), "console", "-c", "c.yaml"], cwd=tmp_path, env=env,
                       input=script, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    assert ESC not in r.stdout and "\x07" not in r.stdout and "\x9b" not in r.stdout
    assert "\\x1b[2j\\x1b[31m" in r.stdout, r.stdout  # command names are lower-cased
    assert "\\x1b]0;owned\\x07" in r.stdout, r.stdout


def test_discord_replies_show_control_characters_escaped(fake_discord, souk_factory):
    fake = fake_discord
    souk_factory(fake)
    fake.wait("ready", timeout=WAIT)
    mid = fake.message(content=f"!help command:pi{ESC}[31mng")["message"]["id"]
    fake.wait_for(lambda _st: any(x.get("message_reference", {}).get("message_id") == mid
                                  for x in fake.messages()), timeout=WAIT, what="the reply")
    reply = next(x for x in fake.messages()
                 if x.get("message_reference", {}).get("message_id") == mid)
    text = reply.get("content", "") + str(reply.get("embeds", ""))
    assert ESC not in text
    assert "\\x1b[31m" in text, text
