"""The store's bad days: a damaged SQLite file is refused at start with a
way out, and a full disk is told as such -- the player learns that the
trade did not happen."""
import os
import sqlite3
import subprocess
import tempfile
import time

import pytest

from soukproc import Souk, sanitized, souk_bin

WAIT = 40 if sanitized() else 15


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("SOUK_") or k == "SOUK_BIN"}


def souk(args, cwd, stdin=""):
    return subprocess.run([souk_bin()] + args, cwd=cwd, env=clean_env(), input=stdin,
                          capture_output=True, text=True, timeout=WAIT)


def test_a_damaged_database_is_refused_at_start(tmp_path):
    (tmp_path / "c.yaml").write_text("core:\n  data_dir: ./d\n")
    assert souk(["db", "migrate", "-c", "c.yaml"], tmp_path).returncode == 0
    db = tmp_path / "d" / "souk.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE filler(x BLOB)")
    for _ in range(200):
        con.execute("INSERT INTO filler VALUES (randomblob(3000))")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    backups = tmp_path / "d" / "backups"
    backups.mkdir()
    for name in ("souk-20260101T000000.000Z-v2.db", "souk-20260301T120000.000Z-v3.db"):
        (backups / name).write_bytes(b"")
    # Overwrite the headers of a few pages in the middle of the file.
    pages = db.stat().st_size // 4096
    with open(db, "r+b") as f:
        for p in range(pages // 2, pages // 2 + 8):
            f.seek(p * 4096)
            f.write(b"\xde\xad\xbe\xef" * 64)
    for cmd in ("console", "run"):
        r = subprocess.run([souk_bin(), cmd, "-c", "c.yaml"], cwd=tmp_path,
                           env=dict(clean_env(), SOUK_DISCORD_TOKEN=
                                    "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l",
                                    SOUK_HTTP_PORT="0"),
                           input="!ping\n", capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert "pong" not in r.stdout
        assert "the database file is damaged" in r.stderr
        assert "souk db check" in r.stderr
        assert "./d/backups/souk-20260301T120000.000Z-v3.db" in r.stderr, r.stderr
    # `souk db check` opens it and shows the damage.
    r = souk(["db", "check", "-c", "c.yaml"], tmp_path)
    assert r.returncode != 0
    assert "integrity_check:" in r.stdout and "integrity_check: ok" not in r.stdout


def tmpfs(path, size):
    """Mount a tmpfs of size bytes at path, or skip where that is not
    allowed (not root, no CAP_SYS_ADMIN)."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())


def test_a_full_disk_says_so_and_the_trade_did_not_happen(tmp_path):
    disk = tmp_path / "disk"
    tmpfs(disk, 4 << 20)
    try:
        cfg = {"core": {"data_dir": f"{disk}/d"}, "market": {"source": "sim", "sim": {"seed": 7}}}
        s = Souk(tmp_path / "w", cfg, args=("console",))
        for k in list(s.env):
            if k.startswith("SOUK_") and k != "SOUK_BIN":
                s.env.pop(k)
        s.start()
        s.proc.stdin.write(b"/buy symbol:AAPL shares:1\n")
        s.proc.stdin.flush()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and "Bought" not in "\n".join(s.stdout_lines):
            time.sleep(0.05)
        # Fill the disk to the last byte.
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        for chunk in (65536, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)
        s.proc.stdin.write(b"/buy symbol:MSFT shares:2\n")
        s.proc.stdin.flush()
        deadline = time.monotonic() + WAIT
        out = ""
        while time.monotonic() < deadline and "disk is full" not in out:
            time.sleep(0.05)
            out = "\n".join(s.stdout_lines)
        s.proc.stdin.close()
        s.proc.wait(timeout=WAIT)
        assert "That did not happen: the bot's disk is full" in out, out + s.log_text()[-2000:]
        assert "no trade was made" in out
        assert "queue full" not in out + s.log_text()
        assert "the disk is full" in s.log_text()
        os.unlink(disk / "filler")
        # Nothing of the refused trade was kept.
        con = sqlite3.connect(disk / "d" / "souk.db")
        n = con.execute("SELECT count(*) FROM market_transactions WHERE symbol = 'MSFT'").fetchone()[0]
        con.close()
        assert n == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_cache_clear_before_redis_connects_says_what_was_not_cleared(tmp_path):
    """With Redis configured but unreachable, /admin cache-clear clears this
    process's memory and says Redis's keys were not cleared."""
    import socket
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]  # closed once the block ends: refused
    (tmp_path / "c.yaml").write_text("core:\n  data_dir: ./d\n")
    env = dict(clean_env(), SOUK_CACHE_URL=f"redis://127.0.0.1:{port}/0")
    r = subprocess.run([souk_bin(), "console", "-c", "c.yaml"], cwd=tmp_path, env=env,
                       input="/admin cache-clear pattern:prices:*\n", capture_output=True,
                       text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    assert "were cleared." not in r.stdout
    assert "cleared from this process's memory only" in r.stdout
    assert "its entries were NOT cleared" in r.stdout
