"""A guild's data is purged a configurable time after the bot leaves it,
and only then: an outage or a quick return purges nothing."""
import time

from conftest import souk_config
from soukproc import sanitized

WAIT = 40 if sanitized() else 15


def test_guild_purged_after_leaving(fake_discord, souk_factory):
    fake = fake_discord
    cfg = souk_config(fake, "data", guilds={"purge_after": "1s", "check_every": "1s"})
    s = souk_factory(fake, config=cfg)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    left, outage, back = "200000000000000001", "200000000000000002", "200000000000000003"
    fake.dispatch("GUILD_DELETE", {"id": left})                       # removed
    fake.dispatch("GUILD_DELETE", {"id": outage, "unavailable": True})  # an outage
    fake.dispatch("GUILD_DELETE", {"id": back})                       # removed...
    fake.dispatch("GUILD_CREATE", {"id": back, "name": "Back", "unavailable": False,
                                   "channels": [], "members": [], "roles": []},
                  force=True)                                          # ...and back
    s.wait_log(f"purged data of guild {left}", timeout=WAIT)
    time.sleep(2.5)  # two more purge rounds
    text = s.log_text()
    assert f"purged data of guild {outage}" not in text
    assert f"purged data of guild {back}" not in text
    # Purged once, not again on later rounds.
    assert text.count(f"purged data of guild {left}") == 1
    assert s.stop() == 0
