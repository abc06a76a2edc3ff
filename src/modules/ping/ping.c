/* The ping module: /ping (or "!ping") answers "pong" with the gateway's
 * heartbeat round trip, so an operator can see end to end that commands
 * arrive and replies go out on every surface. */
#include <stddef.h>

#include "souk/cmd.h"
#include "souk/discord.h"
#include "souk/module.h"

static void ping_cmd(souk_cmd_ctx_t *ctx) {
  int64_t last, avg;
  if (souk_gateway_latency(ctx->shard, &last, &avg) == 0)
    souk_cmd_replyf(ctx, "pong (gateway latency %lld ms, average %lld ms)", (long long)last,
                    (long long)avg);
  else souk_cmd_replyf(ctx, "pong");
}

static const char *const ping_usage[] = {"/ping", NULL};

static const souk_command_t ping_commands[] = {
    {.name = "ping",
     .description = "Check that souk answers, with the gateway latency",
     .category = "General",
     .usage = ping_usage,
     .handler = ping_cmd},
    {0},
};

const souk_module_t souk_ping_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "ping",
    .commands = ping_commands,
};
