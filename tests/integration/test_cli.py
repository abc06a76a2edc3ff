"""souk's command line: check-config, console, config-keys, exit statuses,
and a valgrind leak check of a whole start-work-stop run."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import souk_config
from soukproc import TEST_TOKEN, sanitized, souk_bin

WAIT = 40 if sanitized() else 15


def run(args, cwd, env=None, stdin=None, timeout=WAIT):
    e = dict(os.environ)
    e.pop("SOUK_DISCORD_TOKEN", None)
    e.update(env or {})
    return subprocess.run([souk_bin()] + list(args), cwd=cwd, env=e, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_check_config_reports_every_problem_with_file_and_line(tmp_path):
    cfg = write(tmp_path / "bad.yaml", """\
core:
  log:
    level: loud
discord:
  intents: lots
  large_threshold: 300
  shards:
    count: -2
  presence:
    status: busy
comands:
  prefix: "!"
""")
    r = run(["check-config", "-c", cfg], tmp_path)
    assert r.returncode == 2, r.stderr
    err = r.stderr
    assert "bad.yaml:3: core.log.level: expected one of debug, info, warn, error, found 'loud'" in err
    assert "bad.yaml:5: discord.intents" in err and "'lots'" in err
    assert "bad.yaml:6: discord.large_threshold" in err and "300" in err
    assert "bad.yaml:8: discord.shards.count" in err
    assert "bad.yaml:10: discord.presence.status" in err
    assert "bad.yaml:11:" in err and "did you mean 'commands'" in err
    assert "nothing was started" in err


def test_check_config_ok_and_never_prints_the_token(tmp_path):
    cfg = write(tmp_path / "ok.yaml", "core:\n  data_dir: ./d\n")
    r = run(["check-config", "-c", cfg], tmp_path, env={"SOUK_DISCORD_TOKEN": TEST_TOKEN})
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout
    assert TEST_TOKEN not in r.stdout + r.stderr
    assert "discord.token" in r.stdout  # listed as set, value hidden


def test_malformed_token_caught_before_any_network(tmp_path):
    cfg = write(tmp_path / "ok.yaml", "core:\n  data_dir: ./d\n")
    r = run(["check-config", "-c", cfg], tmp_path, env={"SOUK_DISCORD_TOKEN": "not-a-token"})
    assert r.returncode == 2
    assert "SOUK_DISCORD_TOKEN" in r.stderr and "token" in r.stderr
    assert "not-a-token" not in r.stderr


def test_check_config_online(fake_discord, tmp_path):
    fake = fake_discord
    cfg = write(tmp_path / "c.yaml", f"discord:\n  api_base: {fake.base_url}\n")
    ok = run(["check-config", "--online", "-c", cfg], tmp_path,
             env={"SOUK_DISCORD_TOKEN": fake.token})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "token OK" in ok.stdout
    bad = run(["check-config", "--online", "-c", cfg], tmp_path,
              env={"SOUK_DISCORD_TOKEN": TEST_TOKEN})
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "FAILED" in bad.stdout


def test_run_without_token_explains(tmp_path):
    r = run(["run", "-c", write(tmp_path / "c.yaml", "core:\n  data_dir: ./d\n")], tmp_path)
    assert r.returncode == 2
    assert "SOUK_DISCORD_TOKEN" in r.stderr and "souk console" in r.stderr


def test_unknown_command_and_missing_config(tmp_path):
    r = run(["frobnicate"], tmp_path)
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = run(["check-config", "-c", str(tmp_path / "nope.yaml")], tmp_path)
    assert r.returncode == 2 and "nope.yaml" in r.stderr


def test_console_runs_a_command_without_discord(tmp_path):
    # No token, no network: the console answers through the same dispatcher.
    r = run(["console", "-c", write(tmp_path / "c.yaml", "core:\n  data_dir: ./d\n")], tmp_path,
            stdin="hello\n!ping\n!ping\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("pong") == 2


def test_console_session_help_components_and_modal(tmp_path):
    """A scripted console session: /help shows the first category with
    numbered buttons; typing a number presses one; /prefix set without a
    value opens a form whose field is the next line; the new prefix runs
    commands; mistakes get their reasons; each reply comes before the next
    line runs."""
    cfg = write(tmp_path / "c.yaml", "core:\n  data_dir: ./d\n")
    script = "\n".join([
        "/help", "2", "9",
        "/help command:prefix",
        "/prefix set", ">>",
        ">>ping",
        "/ping now",
        "/admin usage days:0",
        "/nosuch",
        "/admin usage",
    ]) + "\n"
    r = run(["console", "-c", cfg], tmp_path, stdin=script)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # /help: a framed embed of the first category, buttons and a menu.
    assert "+-- souk commands \u2014 General (1/" in out
    assert "`/ping` \u2014 Check that souk answers" in out
    assert "[1] \u25c0 Previous (disabled)  [2] Next \u25b6" in out
    assert "[3] Jump to a category: 3.1 General 3.2 Admin" in out
    # "2" pressed Next: the same message, updated to page 2.
    assert "(message updated)\n+-- souk commands \u2014 Admin (2/" in out
    assert "souk: there is no choice 9 to press" in out
    # One command in full, with its examples.
    assert "| Examples:\n|   `/prefix show`" in out
    # The form asked for its field; the answer set the prefix.
    assert "== Command prefix ==" in out and "New prefix:" in out
    assert "Message commands now start with `>>` here" in out
    assert out.count("pong") == 1
    # Refusals say why.
    assert "`/ping` takes no arguments." in out
    assert "`days` must be from 1 to 30; 0 is too small." in out
    assert "Unknown command `nosuch`." in out
    # Usage analytics saw the session (flushed before the report): /ping
    # twice, once refused.
    assert re.search(r"ping\s+2 calls\s+0\.0% errors\s+1 refused", out), out
    assert re.search(r"component help:p:\s+1 calls", out), out
    # Replies came in order: the prefix was set before ">>ping" ran.
    assert out.index("start with `>>`") < out.index("pong")


def test_console_in_a_terminal(tmp_path):
    """Drive `souk console` through tmux, as a person would."""
    import shutil
    if not shutil.which("tmux"):
        pytest.skip("tmux not installed")
    cfg = write(tmp_path / "c.yaml", "core:\n  data_dir: ./d\n")
    sess = "souk%d" % os.getpid()
    subprocess.run(["tmux", "new-session", "-d", "-s", sess, "-x", "100", "-y", "20",
                    f"cd {tmp_path} && {souk_bin()} console -c {cfg}; sleep 5"], check=True)
    try:
        deadline = time.monotonic() + WAIT
        screen = ""
        while "souk>" not in screen and time.monotonic() < deadline:
            time.sleep(0.1)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", sess],
                                    capture_output=True, text=True).stdout
        subprocess.run(["tmux", "send-keys", "-t", sess, "!ping", "Enter"], check=True)
        while "pong" not in screen and time.monotonic() < deadline:
            time.sleep(0.1)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", sess],
                                    capture_output=True, text=True).stdout
        assert "pong" in screen, screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", sess])


def test_config_keys_lists_every_key(tmp_path):
    r = run(["config-keys"], tmp_path)
    assert r.returncode == 0
    for key in ("core.data_dir", "discord.token", "discord.shards.identify_lock",
                "discord.rest.invalid_limit", "commands.prefix", "usage.flush_every"):
        assert f"`{key}`" in r.stdout
    assert "SOUK_DISCORD_SHARDS_COUNT" in r.stdout


@pytest.mark.skipif(os.environ.get("SOUK_VALGRIND") != "1" or sanitized(),
                    reason="valgrind run: scripts/test.sh sets SOUK_VALGRIND=1")
def test_valgrind_start_work_stop_leaks_nothing(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    log = tmp_path / "valgrind.log"
    s = souk_factory(fake, wrap=["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                                 "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                                 f"--log-file={log}"])
    fake.wait("ready", timeout=90)
    for _ in range(3):
        fake.message(content="!ping")
    fake.wait_for(lambda st: sum(1 for r in st["rest"]["requests"]
                                 if r["method"] == "POST" and r["path"].endswith("/messages")) >= 3,
                  timeout=60, what="three replies")
    fake.drop()  # a resume on the way, so reconnect paths are covered too
    fake.wait("resumed", timeout=60)
    rc = s.stop(signal.SIGTERM, timeout=90)
    text = log.read_text()
    assert rc == 0, text[-4000:]
    assert "ERROR SUMMARY: 0 errors" in text, text[-4000:]
    assert "definitely lost: 0 bytes" in text or "no leaks are possible" in text, text[-4000:]


def test_db_commands_on_sqlite(tmp_path):
    cfg = write(tmp_path / "c.yaml", "core:\n  data_dir: ./d\n")
    r = run(["db", "migrate", "-c", cfg], tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"schema at version \d+ \(\d+ migration\(s\) applied\)", r.stdout)
    again = run(["db", "migrate", "-c", cfg], tmp_path)
    assert "(0 migration(s) applied)" in again.stdout
    r = run(["db", "check", "-c", cfg], tmp_path)
    assert r.returncode == 0 and "integrity_check: ok" in r.stdout, r.stdout + r.stderr
    r = run(["db", "backup", str(tmp_path / "copy.db"), "-c", cfg], tmp_path)
    assert r.returncode == 0 and (tmp_path / "copy.db").stat().st_size > 0
    assert run(["db", "vacuum", "-c", cfg], tmp_path).returncode == 0
    r = run(["db", "forget-user", "123456789012345678", "-c", cfg], tmp_path)
    assert r.returncode == 0 and "row(s) deleted" in r.stdout
    bad = run(["db", "forget-user", "12", "-c", cfg], tmp_path)
    assert bad.returncode == 2 and "not a Discord id" in bad.stderr
    assert run(["db", "frobnicate", "-c", cfg], tmp_path).returncode == 2


def test_db_refuses_a_newer_schema(tmp_path):
    import sqlite3
    cfg = write(tmp_path / "c.yaml", "core:\n  data_dir: ./d\n")
    assert run(["db", "migrate", "-c", cfg], tmp_path).returncode == 0
    con = sqlite3.connect(tmp_path / "d" / "souk.db")
    con.execute("INSERT INTO schema_version(version, description, applied_at) VALUES (999, 'x', 0)")
    con.commit()
    con.close()
    r = run(["console", "-c", cfg], tmp_path, stdin="!ping\n")
    assert r.returncode == 2, r.stderr
    assert "newer" in r.stderr


def test_example_config_is_valid(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = run(["check-config", "-c", os.path.join(root, "config", "souk.example.yaml")], tmp_path,
            env={"SOUK_DISCORD_TOKEN": TEST_TOKEN})
    assert r.returncode == 0, r.stderr
