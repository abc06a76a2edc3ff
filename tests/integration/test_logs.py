"""Where the log goes: the console's log in its data directory (so replies
are not interleaved with it), core.log.file for `souk run`, reopened on
SIGHUP after logrotate moved it; stderr keeps warnings and errors."""
import os
import re
import signal
import subprocess
import time

from conftest import souk_config
from soukproc import sanitized, souk_bin

WAIT = 40 if sanitized() else 15


def wait_for(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_console_log_goes_to_the_data_directory(tmp_path):
    (tmp_path / "c.yaml").write_text("core:\n  data_dir: ./d\n  log:\n    level: debug\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUK_") or k == "SOUK_BIN"}
    r = subprocess.run([souk_bin(), "console", "-c", "c.yaml"], cwd=tmp_path, env=env,
                       input="!ping\n/nosuch\n!ping\n", capture_output=True, text=True,
                       timeout=WAIT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("pong") == 2
    # Replies alone on stdout; no log line there or among them on stderr.
    assert "level=" not in r.stdout
    assert not re.search(r"level=(debug|info)", r.stderr), r.stderr
    assert "the console's log is in ./d/console.log" in r.stderr
    log = (tmp_path / "d" / "console.log").read_text()
    assert "level=info" in log
    assert "stopped (exit status 0)" in log


def test_log_file_and_sighup_reopen(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    logf = tmp_path / "souk.log"
    cfg = souk_config(fake, tmp_path / "data", core={"log": {"level": "info", "file": str(logf)}})
    s = souk_factory(fake, config=cfg)
    fake.wait("ready", timeout=WAIT)
    wait_for(lambda: logf.exists() and "shard 0 ready" in logf.read_text(), "the ready line")
    # logrotate: move the file away, then SIGHUP.
    rotated = tmp_path / "souk.log.1"
    os.rename(logf, rotated)
    s.signal(signal.SIGHUP)
    wait_for(lambda: logf.exists() and "SIGHUP" in logf.read_text(), "a new log file")
    fake.message(content="!ping")
    wait_for(lambda: "POST" in logf.read_text() or "pong" in str(fake.state()), "a reply")
    assert s.stop(signal.SIGTERM) == 0
    old, new = rotated.read_text(), logf.read_text()
    assert "shard 0 ready" in old and "SIGHUP" not in old
    assert "stopped (exit status 0)" in new
    # stderr kept only warnings and errors.
    assert not re.search(r"level=(debug|info)", s.log_text()), s.log_text()[-2000:]
