/* The ping module: answers "<prefix>ping" so an operator can see, end to
 * end, that events arrive and replies go out (gateway → dispatcher → REST).
 * The commands issue turns this into a registered command. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "souk/json.h"
#include "souk/log.h"
#include "souk/module.h"

typedef struct ping_conf {
  char *prefix;
} ping_conf_t;

static ping_conf_t ping_conf;

static const souk_conf_key_t ping_conf_keys[] = {
    {"prefix", SOUK_CONF_STRING, offsetof(ping_conf_t, prefix), "!", 0, 8, NULL,
     SOUK_CONF_RUNTIME, "prefix of message commands"},
    {0},
};

static void ping_on_message(const souk_event_t *ev) {
  const souk_json_t *j = ev->json;
  int author = souk_json_get(j, ev->d, "author");
  bool bot = false;
  souk_json_bool(j, souk_json_get(j, author, "bot"), &bot);
  if (bot) return; /* never answer bots, ourselves included */
  size_t n;
  const char *content = souk_json_raw(j, souk_json_get(j, ev->d, "content"), &n);
  const char *prefix = ping_conf.prefix ? ping_conf.prefix : "!";
  size_t pl = strlen(prefix);
  if (!content || n != pl + 4 || memcmp(content, prefix, pl) != 0 ||
      memcmp(content + pl, "ping", 4) != 0)
    return;
  /* Show the gateway's heartbeat round trip once one has been measured. */
  char text[96] = "pong";
  int64_t last, avg;
  if (ev->source == SOUK_SRC_GATEWAY && souk_gateway_latency(ev->shard, &last, &avg) == 0)
    snprintf(text, sizeof text, "pong (gateway latency %lld ms, average %lld ms)",
             (long long)last, (long long)avg);
  int rc = souk_reply(ev, text);
  if (rc) SOUK_WARN("ping", "reply failed: %d", rc);
}

static const souk_event_handler_t ping_events[] = {
    {"MESSAGE_CREATE", ping_on_message},
    {0},
};

const souk_module_t souk_ping_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "ping",
    .conf = ping_conf_keys,
    .conf_data = &ping_conf,
    .events = ping_events,
};
