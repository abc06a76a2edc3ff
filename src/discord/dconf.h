/* The `discord` config section: what the REST client and the gateway need. */
#ifndef SOUK_DISCORD_DCONF_H
#define SOUK_DISCORD_DCONF_H

#include <stdbool.h>
#include <stdint.h>

#include "souk/conf.h"

/** Values of the `discord` section (see discord_conf_keys in dconf.c). */
typedef struct souk__discord_conf {
  char *token;             /* bot token, from SOUK_DISCORD_TOKEN */
  uint64_t application_id; /* 0: learnt from READY */
  char *api_base;          /* "https://discord.com/api/v10" */
  char *gateway_url;       /* NULL: from GET /gateway/bot */
  int64_t intents;         /* gateway intents bit set */
  int64_t shard_count;     /* 0: Discord's recommendation */
  int64_t shard_first;     /* first shard id this process runs */
  int64_t shard_last;      /* last shard id (inclusive); -1: shard_count-1 */
  int64_t max_concurrency; /* 0: from GET /gateway/bot */
  char *identify_lock;     /* lock-file path shared by processes on one host */
  int64_t identify_share;  /* percent of Discord's daily session starts souk may use */
  bool handoff;            /* with cache.url: hand sessions on through Redis (handoff.h) */
  int compress;            /* index: zlib-stream, zstd-stream, none, true, false */
  bool cache_members;      /* keep member lists (members.h) */
  int64_t large_threshold; /* 50..250 */
  int presence_status;     /* index: online, idle, dnd, invisible */
  char *presence_activity; /* "Playing ..." text, or NULL */
  int64_t rest_queue_max;  /* queued requests before SOUK_EFULL */
  int64_t rest_retries;    /* retries for 5xx / connection errors */
  int64_t rest_timeout_ms; /* per request */
  int64_t rest_global_per_s; /* global limit, Discord's default 50 */
  int64_t rest_global_margin; /* of those, held back: requests go evenly at the rest */
  int64_t invalid_limit;   /* stop sending after this many 401/403/429 in 10 min */
  char *user_agent_url;    /* URL in the User-Agent */
  char *public_key;        /* application public key, 64 hex characters; NULL: no
                              HTTP interactions endpoint (checked by souk__ix_mount) */
} souk__discord_conf_t;

/** discord.compress as a souk__gw_compress_t. */
int souk__discord_compress(void);

/** Key table of the `discord` section. */
extern const souk_conf_key_t souk__discord_conf_keys[];
/** Checks of the `discord` keys beyond their types (URL schemes, the public
 * key's shape). */
extern const souk_conf_check_t souk__discord_conf_checks[];
/** The live values. */
extern souk__discord_conf_t souk__discord_conf;

#endif
