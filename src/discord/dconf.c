/* The `discord` config section. */
#include "discord/dconf.h"

#include "discord/gateway.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "souk/buf.h"

souk__discord_conf_t souk__discord_conf;

static const char *const presence_choices[] = {"online", "idle", "dnd", "invisible", NULL};
/* "true" and "false" are kept from when the key was a boolean: true is the
 * default method, false none. */
static const char *const compress_choices[] = {"zlib-stream", "zstd-stream", "none", "true",
                                               "false", NULL};

int souk__discord_compress(void) {
  switch (souk__discord_conf.compress) {
  case 0:
  case 3:
    return SOUK_GW_COMPRESS_ZLIB;
  case 1:
    return SOUK_GW_COMPRESS_ZSTD;
  default:
    return SOUK_GW_COMPRESS_NONE;
  }
}

#define K(field) offsetof(souk__discord_conf_t, field)
const souk_conf_key_t souk__discord_conf_keys[] = {
    {"token", SOUK_CONF_TOKEN, K(token), NULL, 0, 0, NULL, SOUK_CONF_SECRET,
     "bot token; set SOUK_DISCORD_TOKEN in the environment, not in the file"},
    {"application_id", SOUK_CONF_SNOWFLAKE, K(application_id), NULL, 0, 0, NULL, 0,
     "application id (learnt from READY when unset)"},
    {"api_base", SOUK_CONF_URL, K(api_base), "https://discord.com/api/v10", 0, 0, NULL, 0,
     "REST API base URL"},
    {"gateway_url", SOUK_CONF_URL, K(gateway_url), NULL, 0, 0, NULL, 0,
     "gateway URL override (default: from GET /gateway/bot)"},
    {"intents", SOUK_CONF_INT, K(intents), "33281", 0, (1 << 26) - 1, NULL, 0,
     "gateway intents bit set; the default 33281 is GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT "
     "(MESSAGE_CONTENT is privileged: enable it in the Developer Portal)"},
    {"shards.count", SOUK_CONF_INT, K(shard_count), "0", 0, 65535, NULL, 0,
     "total shards; 0 uses Discord's recommendation"},
    {"shards.first", SOUK_CONF_INT, K(shard_first), "0", 0, 65535, NULL, 0,
     "first shard id run by this process"},
    {"shards.last", SOUK_CONF_INT, K(shard_last), "-1", -1, 65535, NULL, 0,
     "last shard id run by this process; -1 for the last shard"},
    {"shards.max_concurrency", SOUK_CONF_INT, K(max_concurrency), "0", 0, 1024, NULL, 0,
     "identify concurrency; 0 uses GET /gateway/bot"},
    {"shards.identify_lock", SOUK_CONF_STRING, K(identify_lock), NULL, 0, 0, NULL, 0,
     "lock file coordinating IDENTIFY across processes on one host (default: <data_dir>/identify.lock)"},
    {"shards.identify_share", SOUK_CONF_INT, K(identify_share), "90", 1, 100, NULL, 0,
     "percent of Discord's daily session starts (session_start_limit.total, 1000 for most bots) "
     "the bot may use in any 24 hours, counted across its processes; past it shards wait "
     "instead of identifying, since going over resets the token"},
    {"shards.handoff", SOUK_CONF_BOOL, K(handoff), "true", 0, 0, NULL, 0,
     "with cache.url set: keep each shard's session in Redis after every event and close "
     "sessions with 4000 on stop, so the process that runs the shard next resumes it without "
     "a new IDENTIFY and without losing events"},
    {"compress", SOUK_CONF_ENUM, K(compress), "zlib-stream", 0, 0, compress_choices, 0,
     "gateway transport compression: zlib-stream, zstd-stream or none (true: the default, "
     "false: none)"},
    {"cache.members", SOUK_CONF_BOOL, K(cache_members), "false", 0, 0, NULL, 0,
     "keep every guild's members and their roles in memory (about 50 bytes a member); off: "
     "nothing souk ships needs member lists"},
    {"large_threshold", SOUK_CONF_INT, K(large_threshold), "50", 50, 250, NULL, 0,
     "member count above which a guild is 'large'"},
    {"presence.status", SOUK_CONF_ENUM, K(presence_status), "online", 0, 0, presence_choices,
     SOUK_CONF_RUNTIME, "presence status"},
    {"presence.activity", SOUK_CONF_STRING, K(presence_activity), NULL, 0, 128, NULL,
     SOUK_CONF_RUNTIME, "activity text shown as 'Playing ...'"},
    {"rest.queue_max", SOUK_CONF_INT, K(rest_queue_max), "10000", 1, 10000000, NULL, 0,
     "REST requests queued before new ones fail with 'queue full'"},
    {"rest.retries", SOUK_CONF_INT, K(rest_retries), "5", 0, 20, NULL, SOUK_CONF_RUNTIME,
     "retries for 5xx and connection errors (never for 4xx)"},
    {"rest.timeout", SOUK_CONF_DURATION, K(rest_timeout_ms), "15s", 100, 600000, NULL,
     SOUK_CONF_RUNTIME, "timeout for one REST request"},
    {"rest.global_per_second", SOUK_CONF_INT, K(rest_global_per_s), "50", 1, 100000, NULL, 0,
     "global REST requests per second (Discord: 50 unless raised for the bot)"},
    {"rest.global_margin", SOUK_CONF_INT, K(rest_global_margin), "5", 0, 99999, NULL, 0,
     "requests a second held back from global_per_second: requests are spread evenly at the "
     "rest, so network jitter never lands a full second's worth in one of Discord's windows"},
    {"rest.invalid_limit", SOUK_CONF_INT, K(invalid_limit), "5000", 10, 9999, NULL, 0,
     "401/403/429 responses in 10 minutes after which REST stops (Discord bans at 10000)"},
    {"user_agent_url", SOUK_CONF_STRING, K(user_agent_url), "https://github.com/souk-bot/souk",
     0, 0, NULL, 0, "URL in the User-Agent header"},
    /* Its shape is checked with the configuration (check_public_key); it
     * is public, so no SOUK_CONF_SECRET. */
    {"public_key", SOUK_CONF_STRING, K(public_key), NULL, 0, 64, NULL, 0,
     "application public key (64 hex characters, Developer Portal > General Information); "
     "set it to serve POST /interactions on the HTTP server"},
    {0},
};

/* What the key types cannot say: a URL's scheme, the public key's shape,
 * and a User-Agent URL that cannot break the header. */
static bool scheme_is(const char *v, const char *const *schemes) {
  for (; *schemes; schemes++) {
    size_t n = strlen(*schemes);
    if (!strncasecmp(v, *schemes, n) && !strncmp(v + n, "://", 3)) return true;
  }
  return false;
}

static bool check_api_base(const char *v, souk_buf_t *expected) {
  static const char *const http[] = {"https", "http", NULL};
  if (scheme_is(v, http)) return true;
  souk_buf_puts(expected, "an http(s) URL such as https://discord.com/api/v10");
  return false;
}

static bool check_gateway_url(const char *v, souk_buf_t *expected) {
  static const char *const ws[] = {"wss", "ws", NULL};
  if (scheme_is(v, ws)) return true;
  souk_buf_puts(expected, "a WebSocket URL such as wss://gateway.discord.gg");
  return false;
}

static bool check_user_agent_url(const char *v, souk_buf_t *expected) {
  for (const char *p = v; *p; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '(' || *p == ')' || *p == ',') {
      souk_buf_puts(expected, "a URL without control characters, parentheses or commas");
      return false;
    }
  }
  return true;
}

static bool check_public_key(const char *v, souk_buf_t *expected) {
  size_t n = 0;
  for (; v[n]; n++)
    if (!isxdigit((unsigned char)v[n])) break;
  if (n == 64 && !v[n]) return true;
  souk_buf_puts(expected, "the application's public key: exactly 64 hex digits (Developer "
                          "Portal > General Information)");
  return false;
}

const souk_conf_check_t souk__discord_conf_checks[] = {
    {"api_base", check_api_base},
    {"gateway_url", check_gateway_url},
    {"user_agent_url", check_user_agent_url},
    {"public_key", check_public_key},
    {0},
};
