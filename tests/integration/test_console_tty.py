"""`souk console` in a real terminal (tmux): line editing, history recall,
Ctrl-R, Ctrl-D, and the history file it leaves behind.

The keys are sent the way a person types them; tmux turns Left, Up, C-a and
so on into the escape sequences its terminal sends.  Skipped until
src/core/console.c reads through the line reader (src/core/lineread.c)."""
import os
import shutil
import stat
import subprocess
import time

import pytest

from soukproc import ROOT, sanitized, souk_bin

WAIT = 40 if sanitized() else 15


def _console_uses_lineread():
    try:
        with open(os.path.join(ROOT, "src", "core", "console.c")) as f:
            return "souk__lineread_start" in f.read()
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(not shutil.which("tmux"), reason="tmux not installed"),
    pytest.mark.skipif(not _console_uses_lineread(),
                       reason="console.c does not use the line reader yet"),
]


class Tmux:
    def __init__(self, cwd, cmd):
        self.sess = "soukline%d" % os.getpid()
        subprocess.run(["tmux", "kill-session", "-t", self.sess], capture_output=True)
        env = dict(os.environ, TERM="xterm-256color")
        env.pop("SOUK_DISCORD_TOKEN", None)
        subprocess.run(["tmux", "new-session", "-d", "-s", self.sess, "-x", "100", "-y", "30",
                        f"cd {cwd} && {cmd}; echo EXITED=$?; sleep 30"], check=True, env=env)

    def screen(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.sess],
                              capture_output=True, text=True).stdout

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.sess] + list(keys), check=True)

    def literal(self, text):
        subprocess.run(["tmux", "send-keys", "-l", "-t", self.sess, text], check=True)

    def wait(self, pred, what):
        deadline = time.monotonic() + WAIT
        s = self.screen()
        while not pred(s) and time.monotonic() < deadline:
            time.sleep(0.1)
            s = self.screen()
        assert pred(s), f"waiting for {what}; screen:\n{s}"
        return s

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.sess], capture_output=True)


def pongs(screen):
    return sum(1 for line in screen.splitlines() if "pong" in line and "!ping" not in line)


def test_console_line_editing_and_history(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("core:\n  data_dir: ./d\n")
    t = Tmux(tmp_path, f"{souk_bin()} console -c {cfg}")
    try:
        t.wait(lambda s: "souk>" in s, "the prompt")
        # Left arrow and an insertion in the middle.
        t.literal("!pig")
        t.keys("Left")
        t.literal("n")
        t.keys("Enter")
        t.wait(lambda s: pongs(s) >= 1, "the first pong")
        assert "souk> !ping" in t.screen()
        # Up recalls the previous line.
        t.keys("Up", "Enter")
        t.wait(lambda s: pongs(s) >= 2, "a pong from history")
        # Ctrl-A, Ctrl-K, Ctrl-U and backspace.
        t.literal("junk")
        t.keys("C-a", "C-k")
        t.literal("!pingg")
        t.keys("BSpace", "Enter")
        t.wait(lambda s: pongs(s) >= 3, "a pong after editing")
        # Ctrl-R finds it again.
        t.keys("C-r")
        t.literal("pi")
        t.wait(lambda s: "(reverse-i-search)`pi': !ping" in s, "the search prompt")
        t.keys("Enter")
        t.wait(lambda s: pongs(s) >= 4, "a pong from the search")
        # A line starting with a space is not remembered (nor is it a
        # prefix command: the prefix must come first).
        t.literal(" !ping")
        t.keys("Enter")
        t.wait(lambda s: "souk>  !ping\nsouk>" in s, "the next prompt")
        # Ctrl-D on an empty line ends the console cleanly.
        t.keys("C-d")
        t.wait(lambda s: "EXITED=0" in s, "a clean exit")
    finally:
        t.close()

    # The history was saved 0600, without repeats or the private line.
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if "history" in f]
    assert files, "no history file under " + str(tmp_path)
    st = os.stat(files[0])
    assert stat.S_IMODE(st.st_mode) == 0o600
    with open(files[0]) as f:
        assert f.read().splitlines() == ["!ping"]

    # The next session recalls it.
    t = Tmux(tmp_path, f"{souk_bin()} console -c {cfg}")
    try:
        t.wait(lambda s: "souk>" in s, "the prompt")
        t.keys("Up")
        t.wait(lambda s: "souk> !ping" in s, "the recalled line")
        t.keys("C-u", "C-d")
        t.wait(lambda s: "EXITED=0" in s, "a clean exit")
    finally:
        t.close()
