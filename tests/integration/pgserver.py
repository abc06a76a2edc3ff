"""A throwaway PostgreSQL server for integration tests, on loopback.

The Python twin of tests/unit/store/pgserver.h: initdb and pg_ctl from
/usr/lib/postgresql/15/bin (or $SOUK_PG_BIN) in a fresh temp dir, on a free
port, with trust auth and fsync off; as root they run as `postgres` through
runuser, in a dir chowned to it.  PgServer.stop() stops the server
(immediate mode) and removes the dir.  Queries go through psql, so the
tests need no Python driver.  When the binaries are missing, start() raises
PgUnavailable: callers skip, not fail.
"""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


class PgUnavailable(Exception):
    pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        self.bin = os.environ.get("SOUK_PG_BIN", "/usr/lib/postgresql/15/bin")
        self.dir = None
        self.port = None
        self.up = False

    def _run(self, *argv):
        argv = list(argv)
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    def start(self):
        for tool in ("initdb", "pg_ctl"):
            if not os.access(os.path.join(self.bin, tool), os.X_OK):
                raise PgUnavailable("PostgreSQL binaries not found in %s (install postgresql-15 "
                                    "or set SOUK_PG_BIN)" % self.bin)
        pw = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root and no `postgres` user to run initdb as")
        self.dir = tempfile.mkdtemp(prefix="souk-pg-")
        if pw:
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        r = self._run(os.path.join(self.bin, "initdb"), "-D", self.dir + "/data", "-A", "trust",
                      "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
        if r.returncode:
            raise RuntimeError("initdb failed: " + r.stdout + r.stderr)
        for _ in range(3):
            self.port = _free_port()
            opts = ("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                    "-c max_connections=60" % (self.port, self.dir))
            r = self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.dir + "/data", "-w",
                          "-t", "30", "-l", self.dir + "/server.log", "-o", opts, "start")
            if r.returncode == 0:
                self.up = True
                return self
        raise RuntimeError("pg_ctl start failed: " + r.stdout + r.stderr)

    def url(self, db="postgres"):
        return "postgres://postgres@127.0.0.1:%d/%s" % (self.port, db)

    def create_db(self, name):
        self.query("CREATE DATABASE " + name)
        return self.url(name)

    def query(self, q, *args, db="postgres"):
        """Rows of q, each a tuple; a `?` takes the next argument, which
        must be an int (the tests only pass ids and amounts)."""
        for a in args:
            if not isinstance(a, int):
                raise TypeError("only int arguments: %r" % (a,))
            q = q.replace("?", str(a), 1)
        r = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                            self.url(db), "-c", q], capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise RuntimeError("psql: %s: %s" % (q, r.stderr))
        rows = []
        for line in r.stdout.splitlines():
            rows.append(tuple(_value(v) for v in line.split("\x1f")))
        return rows

    def stop(self):
        if self.up:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.dir + "/data", "-m",
                      "immediate", "-w", "-t", "30", "stop")
            self.up = False
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _value(v):
    """psql prints every value as text: ints back to int, NULL ("") to None."""
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        return v
