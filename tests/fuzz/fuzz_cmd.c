/* libFuzzer target for command arguments from outside: the prefix/console
 * text parser (with aliases, and the round trip through
 * souk_cmd_args_line), and the interaction-data parser on JSON that
 * parses.  A
 * table with every option type, bounds, choices and a subcommand group is
 * registered once.  Whatever the input, the parsers must return cleanly,
 * leave a message on failure, and never read or write out of bounds.
 *
 * Run: fuzz_cmd tests/fuzz/corpus/cmd */
#include "core/cmdreg.h"
#include "souk/buf.h"
#include "souk/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void h(souk_cmd_ctx_t *ctx) { (void)ctx; }
static void ac(souk_cmd_ctx_t *ctx) { (void)ctx; }

static const souk_cmd_choice_t sides[] = {{"Buy", "buy"}, {"Sell", "sell"}, {NULL, NULL}};
static const souk_cmd_option_t buy_opts[] = {
    {.name = "symbol", .description = "d", .type = SOUK_OPT_STRING, .required = true,
     .autocomplete = true, .max_length = 10},
    {.name = "amount", .description = "d", .type = SOUK_OPT_INTEGER, .required = true,
     SOUK_OPT_INT_RANGE(1, 1000000)},
    {.name = "limit", .description = "d", .type = SOUK_OPT_NUMBER, SOUK_OPT_NUM_RANGE(0.01, 1e5)},
    {.name = "confirm", .description = "d", .type = SOUK_OPT_BOOLEAN},
    {.name = "side", .description = "d", .type = SOUK_OPT_STRING, .choices = sides},
    {.name = "user", .description = "d", .type = SOUK_OPT_USER},
    {.name = "channel", .description = "d", .type = SOUK_OPT_CHANNEL},
    {.name = "role", .description = "d", .type = SOUK_OPT_ROLE},
    {0}};
static const souk_cmd_option_t set_opts[] = {
    {.name = "prefix", .description = "d", .type = SOUK_OPT_STRING, .required = true,
     .max_length = 5},
    {0}};
static const struct souk_command prefix_subs[] = {
    {.name = "set", .description = "d", .options = set_opts, .handler = h}, {0}};
static const struct souk_command setup_subs[] = {
    {.name = "prefix", .description = "d", .subcommands = prefix_subs}, {0}};
static const struct souk_command cmds[] = {
    {.name = "buy", .description = "d", .options = buy_opts, .handler = h, .autocomplete = ac},
    {.name = "setup", .description = "d", .subcommands = setup_subs},
    {0}};

static const souk_cmd_alias_t aliases[] = {
    {"purchase", "buy"}, {"set prefix", "setup prefix set"}, {0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int registered;
  if (!registered) {
    if (souk__cmd_register(cmds, "fuzz") != 0 || souk__cmd_alias_register(aliases, "fuzz") != 0 ||
        souk__cmd_aliases_check() != 0)
      abort();
    registered = 1;
  }
  souk_cmd_args_t args;
  memset(&args, 0, sizeof args);
  int rc = souk__cmd_parse_text((const char *)data, size, &args);
  if (rc != 0 && args.error[0] == '\0') abort(); /* a failure always explains itself */
  if (rc == 0) {
    /* What parsed is written back as a line (a gate keeps commands so)
     * that parses again to the same command and arguments. */
    souk_buf_t line;
    souk_buf_init(&line);
    if (souk_cmd_args_line(&args, &line) != 0) abort();
    souk_cmd_args_t again;
    memset(&again, 0, sizeof again);
    if (souk__cmd_parse_text(line.data, line.len, &again) != 0 ||
        strcmp(again.path, args.path) != 0 || again.n != args.n)
      abort();
    for (size_t i = 0; i < args.n; i++) {
      const souk_cmd_arg_t *a = &args.v[i], *b = souk_cmd_arg(&again, a->name);
      if (!b || a->i != b->i || a->b != b->b || a->id != b->id ||
          (a->type == SOUK_OPT_NUMBER && a->num != b->num) ||
          (a->type == SOUK_OPT_STRING && strcmp(a->text, b->text) != 0))
        abort();
    }
    souk_cmd_args_free(&again);
    souk_buf_free(&line);
  }
  souk_cmd_args_free(&args);

  souk_json_t j = {0};
  if (souk_json_parse(&j, (const char *)data, size) == 0) {
    for (int ac_mode = 0; ac_mode < 2; ac_mode++) {
      memset(&args, 0, sizeof args);
      rc = souk__cmd_parse_interaction(&j, 0, ac_mode, &args);
      if (rc != 0 && args.error[0] == '\0') abort();
      souk_cmd_args_free(&args);
    }
  }
  souk_json_free(&j);
  return 0;
}
