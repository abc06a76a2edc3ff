"""Run the real souk binary in a test: generated config, environment pointing
at the fakes, captured logs, signals, exit status.

The binary is $SOUK_BIN (set by scripts/test.sh), else build/test/souk.
With SOUK_VALGRIND=1 a run may be wrapped in valgrind's leak checker.
"""
import json
import os
import signal as _signal
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A token of Discord's shape (base64 of an id, a timestamp part, an HMAC part)
# that means nothing anywhere: the fakes accept it.
TEST_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l"


def souk_bin():
    return os.environ.get("SOUK_BIN") or os.path.join(ROOT, "build", "test", "souk")


def sanitized():
    return os.environ.get("SOUK_SANITIZED") == "1"


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))


def to_yaml(d, indent=0):
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.append(" " * indent + f"{k}:")
            out.append(to_yaml(v, indent + 2))
        elif isinstance(v, list):
            out.append(" " * indent + f"{k}:")
            for item in v:
                out.append(" " * (indent + 2) + "- " + _yaml_scalar(item))
        else:
            out.append(" " * indent + f"{k}: {_yaml_scalar(v)}")
    return "\n".join(out)


class Souk:
    """One souk process.  Logs are collected line by line from stderr."""

    def __init__(self, workdir, config, env=None, args=("run",), wrap=None, stdin=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.config_path = os.path.join(self.workdir, "souk.yaml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(config) + "\n")
        self.env = dict(os.environ)
        self.env.setdefault("SOUK_DISCORD_TOKEN", TEST_TOKEN)
        self.env.update(env or {})
        self.args = list(args)
        self.wrap = list(wrap or [])
        self.stdin = stdin
        self.lines = []
        self.stdout_lines = []
        self._cv = threading.Condition()
        self.proc = None

    def start(self):
        cmd = self.wrap + [souk_bin()] + self.args + ["-c", self.config_path]
        self.proc = subprocess.Popen(
            cmd, cwd=self.workdir, env=self.env,
            stdin=subprocess.PIPE if self.stdin is None else self.stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines), daemon=True).start()
        return self

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                sink.append(line)
                self._cv.notify_all()
        stream.close()

    def wait_log(self, needle, timeout=15.0, count=1, start=0):
        """Wait until `count` log lines from index `start` contain needle;
        returns the matching lines."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                hits = [l for l in self.lines[start:] if needle in l]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._pending()):
                    raise AssertionError(
                        f"no log line with {needle!r} (x{count}) within {timeout}s; "
                        f"exit={self.proc.poll()}; log tail:\n" + "\n".join(self.lines[-40:]))
                self._cv.wait(min(left, 0.2))

    def _pending(self):
        return False

    def log_text(self):
        with self._cv:
            return "\n".join(self.lines)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=_signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("souk did not exit in time; log tail:\n" + "\n".join(self.lines[-40:]))
        # Let the pump threads drain the pipes.
        time.sleep(0.05)
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
