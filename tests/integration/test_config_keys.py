"""Every configuration key is validated before anything starts.

The key table comes from `souk config-keys` (every section, every module),
so a key added later is covered without touching this file.  Each key gets
a value of the wrong shape for its type -- or, for text keys whose meaning
the type cannot say (an address, a URL's scheme, a dollar amount), a value
of the right type that cannot work -- and souk must exit 2 naming the key
with the file and line, before it creates its data directory, migrates a
database or listens on a port."""
import os
import re
import subprocess

import pytest

from soukproc import TEST_TOKEN, sanitized, souk_bin, to_yaml

WAIT = 60 if sanitized() else 20

# Text keys with a meaning of their own: a value of the right type that
# names nothing usable.
SEMANTIC = {
    "http.bind": "not an address",
    "http.trusted_proxies": ["127.0.0.1", "nginx"],
    "store.url": "mysql://db/souk",
    "cache.url": "http://localhost:6379",
    "cache.ttl": ["prices"],
    "discord.public_key": "abc",
    "discord.api_base": "ftp://discord.com/api",
    "discord.gateway_url": "https://gateway.discord.gg",
    "discord.user_agent_url": "https://x (evil), 1",
    "market.start_cash": "$-5",
    "market.finnhub.url": "ws://localhost:1",
}

# A value of the wrong shape for each type in the table's type column.
BY_TYPE = {
    "integer": "twelve",
    "number": "lots",
    "boolean": "maybe",
    "duration": "soon",
    "size": "huge",
    "id": "12",
    "list of ids": ["12", "abc"],
    "URL": "not a url",
    "token": "not-a-token",
}


def env_clean(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SOUK_") or k == "SOUK_BIN"}
    e.update(extra or {})
    return e


def key_table(tmp_path):
    r = subprocess.run([souk_bin(), "config-keys"], cwd=tmp_path, env=env_clean(),
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\| `([a-z0-9_.]+)` \| ([^|]+) \|", line)
        if m:
            rows.append((m.group(1), m.group(2).strip()))
    return rows


def wrong_value(key, typ):
    if key in SEMANTIC:
        return SEMANTIC[key]
    if typ.startswith("one of"):
        return "no-such-choice"
    if typ in BY_TYPE:
        return BY_TYPE[typ]
    # Text and lists of text take any scalar: a map is of the wrong shape.
    assert typ in ("string", "list of strings"), (key, typ)
    return {"nested": "map"}


def nest(pairs):
    root = {}
    for key, value in pairs:
        parts = key.split(".")
        d = root
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = value
    return root


def test_the_key_table_covers_every_section_and_module(tmp_path):
    sections = {k.split(".")[0] for k, _ in key_table(tmp_path)}
    for s in ("core", "discord", "store", "http", "cache", "commands", "usage", "ops",
              "health", "memguard", "janitor", "guilds", "market"):
        assert s in sections, s


def test_every_key_with_a_wrong_value_is_named_all_at_once(tmp_path):
    rows = key_table(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(to_yaml(nest((k, wrong_value(k, t)) for k, t in rows)) + "\n")
    data = tmp_path / "d"
    env = env_clean({"SOUK_DISCORD_TOKEN": TEST_TOKEN, "SOUK_CORE_DATA_DIR": str(data)})
    # core.data_dir is wrong in the file too; the environment's good value
    # wins, so that "nothing was created" is about the right directory.
    for cmd in ("check-config", "run"):
        r = subprocess.run([souk_bin(), cmd, "-c", "c.yaml"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        for key, _ in rows:
            if key == "core.data_dir":
                continue
            assert re.search(r"^c\.yaml:\d+: " + re.escape(key) + ": expected ", r.stderr,
                             re.M), (cmd, key, r.stderr)
        assert "nothing was started" in r.stderr
        assert not data.exists(), f"{cmd} created the data directory before refusing"


@pytest.mark.parametrize("via", ["file", "env"])
def test_each_key_alone_stops_run_before_any_side_effect(tmp_path, via):
    """One wrong key at a time, from the file or from the environment:
    `souk run` exits 2 naming it, with no data directory made (so no
    migration ran and no lock was taken) and nothing listening."""
    rows = key_table(tmp_path)
    data = tmp_path / "d"
    checked = 0
    for key, typ in rows:
        value = wrong_value(key, typ)
        env = env_clean({"SOUK_DISCORD_TOKEN": TEST_TOKEN, "SOUK_CORE_DATA_DIR": str(data),
                         "SOUK_HTTP_PORT": "0"})
        cfg = tmp_path / "c.yaml"
        if via == "file":
            if key in ("core.data_dir", "discord.token", "http.port"):
                env.pop("SOUK_" + key.upper().replace(".", "_"), None)
            cfg.write_text(to_yaml(nest([(key, value)])) + "\n")
            where = r"c\.yaml:\d+: "
        else:
            if isinstance(value, dict):
                continue  # the environment has no maps: any text is text
            name = "SOUK_" + re.sub(r"[.-]", "_", key).upper()
            env[name] = ",".join(value) if isinstance(value, list) else value
            cfg.write_text("")
            where = "env " + re.escape(name) + ": "
        r = subprocess.run([souk_bin(), "run", "-c", "c.yaml"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 2, (key, value, r.stderr)
        assert re.search("^" + where + re.escape(key) + ": expected ", r.stderr, re.M), \
            (key, r.stderr)
        if key != "core.data_dir":
            assert not data.exists(), f"{key}: the data directory was created"
        assert "listening on" not in r.stderr  # the HTTP server never started
        checked += 1
    assert checked >= (len(rows) if via == "file" else 50)


def test_url_passwords_never_shown_and_warned_in_the_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('store:\n  url: "postgres://bob:hunter2secret@db:5432/souk"\n'
                   'market:\n  finnhub:\n    url: "https://u:filepassw0rd@fh.example/api"\n')
    env = env_clean({"SOUK_DISCORD_TOKEN": TEST_TOKEN,
                     "SOUK_MARKET_POLYGON_URL": "https://u:envpassw0rd@pg.example/"})
    r = subprocess.run([souk_bin(), "check-config", "-c", "c.yaml"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=WAIT)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for pw in ("hunter2secret", "filepassw0rd", "envpassw0rd"):
        assert pw not in out
    assert 'store.url = "postgres://bob:***@db:5432/souk" (c.yaml:2)' in r.stdout
    assert 'market.polygon.url = "https://u:***@pg.example/" (env SOUK_MARKET_POLYGON_URL)' \
        in r.stdout
    assert re.search(r"^c\.yaml:2: warning: store\.url: a password in the config file; "
                     r"set SOUK_STORE_URL", r.stderr, re.M), r.stderr
    assert re.search(r"^c\.yaml:5: warning: market\.finnhub\.url: a password", r.stderr, re.M)
    # An error that quotes the value hides the password too.
    bad = subprocess.run([souk_bin(), "check-config", "-c", "c.yaml"], cwd=tmp_path,
                         env=dict(env, SOUK_STORE_URL="mysql://root:hunter2secret@db/x"),
                         capture_output=True, text=True, timeout=WAIT)
    assert bad.returncode == 2
    assert "env SOUK_STORE_URL: store.url: expected" in bad.stderr
    assert "mysql://root:***@db/x" in bad.stderr
    assert "hunter2secret" not in bad.stdout + bad.stderr


def test_check_config_without_a_token_says_what_run_says(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("core:\n  data_dir: ./d\n")
    env = env_clean()
    run = subprocess.run([souk_bin(), "run", "-c", "c.yaml"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=WAIT)
    assert run.returncode == 2
    said = re.search(r"discord\.token: (not set: .*)", run.stderr).group(1)
    for args in (["check-config"], ["check-config", "--online"]):
        r = subprocess.run([souk_bin()] + args + ["-c", str(cfg)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "configuration OK" not in r.stdout
        assert said in r.stdout, r.stdout


def test_a_shard_range_outside_the_count_stops_run_with_2(tmp_path):
    """Checked with the configuration, not after asking Discord (exit 1)."""
    (tmp_path / "c.yaml").write_text("discord:\n  shards:\n    count: 4\n    first: 1\n"
                                     "    last: 7\n")
    env = env_clean({"SOUK_DISCORD_TOKEN": TEST_TOKEN, "SOUK_CORE_DATA_DIR": str(tmp_path / "d"),
                     "SOUK_DISCORD_API_BASE": "http://127.0.0.1:9/api"})
    for cmd in ("check-config", "run"):
        r = subprocess.run([souk_bin(), cmd, "-c", "c.yaml"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 2, (cmd, r.stderr)
        assert re.search(r"^c\.yaml:5: discord\.shards\.last: expected a shard range", r.stderr,
                         re.M), r.stderr
    env["SOUK_DISCORD_SHARDS_FIRST"] = "3"
    env["SOUK_DISCORD_SHARDS_LAST"] = "2"
    r = subprocess.run([souk_bin(), "run", "-c", "c.yaml"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 2
    assert "env SOUK_DISCORD_SHARDS_FIRST: discord.shards.first: expected a shard range" in r.stderr
    assert not (tmp_path / "d").exists()
