/* Command registry, parsing, validation, checks and custom_id routing.
 *
 * Interaction payloads follow Discord's "Interaction Object" and
 * "Application Command Interaction Data" docs: option values are JSON
 * numbers for INTEGER/NUMBER, booleans for BOOLEAN, strings for ids, and
 * subcommands nest as options of type 1 (inside type 2 for groups). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/cmdreg.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"

static void h(souk_cmd_ctx_t *ctx) { (void)ctx; }
static void ac(souk_cmd_ctx_t *ctx) { (void)ctx; }

static const souk_cmd_option_t buy_opts[] = {
    {.name = "symbol",
     .description = "Ticker symbol",
     .type = SOUK_OPT_STRING,
     .required = true,
     .autocomplete = true,
     .max_length = 10},
    {.name = "amount",
     .description = "How many shares",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     SOUK_OPT_INT_RANGE(1, 1000000)},
    {.name = "limit",
     .description = "Limit price",
     .type = SOUK_OPT_NUMBER,
     SOUK_OPT_NUM_RANGE(0.01, 100000)},
    {.name = "confirm", .description = "Skip the confirmation", .type = SOUK_OPT_BOOLEAN},
    {0}};
static const char *const buy_usage[] = {"/buy symbol:AAPL amount:10", NULL};

static const souk_cmd_option_t give_opts[] = {
    {.name = "user", .description = "Who gets the coins", .type = SOUK_OPT_USER, .required = true},
    {.name = "amount",
     .description = "Coins",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     .has_min = true,
     .min_int = 1},
    {.name = "note",
     .description = "A note",
     .type = SOUK_OPT_STRING,
     .min_length = 2,
     .max_length = 20},
    {0}};

static const souk_cmd_choice_t side_choices[] = {{"Buy", "buy"}, {"Sell", "sell"}, {NULL}};
static const souk_cmd_choice_t n_choices[] = {{"One", "1"}, {"Two", "2"}, {NULL}};
static const souk_cmd_option_t pick_opts[] = {
    {.name = "side", .description = "Side", .type = SOUK_OPT_STRING, .choices = side_choices},
    {.name = "n", .description = "Count", .type = SOUK_OPT_INTEGER, .choices = n_choices},
    {0}};

static const souk_cmd_option_t channel_opts[] = {
    {.name = "channel", .description = "Where", .type = SOUK_OPT_CHANNEL, .required = true},
    {.name = "role", .description = "Who may see it", .type = SOUK_OPT_ROLE},
    {0}};
static const souk_cmd_option_t prefix_set_opts[] = {{.name = "prefix",
                                                     .description = "New prefix",
                                                     .type = SOUK_OPT_STRING,
                                                     .required = true,
                                                     .max_length = 5},
                                                    {0}};
static const struct souk_command prefix_subs[] = {
    {.name = "set", .description = "Set the prefix", .options = prefix_set_opts, .handler = h},
    {.name = "reset", .description = "Back to the default", .handler = h, .cooldown_ms = 500},
    {0}};
static const struct souk_command setup_subs[] = {
    {.name = "channel", .description = "Pick the channel", .options = channel_opts, .handler = h},
    {.name = "prefix", .description = "Prefix commands", .subcommands = prefix_subs},
    {0}};

static const struct souk_command market_cmds[] = {
    {.name = "buy",
     .description = "Buy shares",
     .category = "Market",
     .usage = buy_usage,
     .options = buy_opts,
     .handler = h,
     .autocomplete = ac,
     .cooldown_ms = 3000},
    {.name = "give",
     .description = "Give coins",
     .options = give_opts,
     .handler = h,
     .flags = SOUK_CMD_GUILD_ONLY},
    {.name = "pick", .description = "Pick", .options = pick_opts, .handler = h},
    {.name = "setup",
     .description = "Set up the bot",
     .subcommands = setup_subs,
     .flags = SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD},
    {.name = "reload", .description = "Reload config", .handler = h, .flags = SOUK_CMD_OWNER_ONLY},
    {.name = "ping",
     .description = "Pong",
     .handler = h,
     .permissions = SOUK_PERM_MANAGE_GUILD | SOUK_PERM_MANAGE_CHANNELS | SOUK_PERM_MANAGE_ROLES},
    {0}};

static int setup(void **state) {
  souk_log_set_level(SOUK_LOG_OFF);
  souk__cmd_clear();
  return souk__cmd_register(market_cmds, "market");
}

static int teardown(void **state) {
  souk__cmd_clear();
  souk__cmd_set_clock(NULL);
  return 0;
}

/* --- Registration ------------------------------------------------------- */

/* The registry borrows tables, so each one gets its own static slot. */
static int reg1(const struct souk_command *c) {
  static struct souk_command pool[64][2];
  static size_t used;
  SOUK_ASSERT(used < 64);
  pool[used][0] = *c;
  return souk__cmd_register(pool[used++], "t");
}

static void test_register_lookup(void **state) {
  assert_int_equal(souk__cmd_count(), 6);
  const char *mod = NULL;
  assert_ptr_equal(souk__cmd_find("buy", &mod), &market_cmds[0]);
  assert_string_equal(mod, "market");
  assert_null(souk__cmd_find("sell", NULL));
  const char *p1[] = {"setup", "prefix", "set"};
  assert_ptr_equal(souk__cmd_lookup(p1, 3), &prefix_subs[0]);
  const char *p2[] = {"setup", "channel"};
  assert_ptr_equal(souk__cmd_lookup(p2, 2), &setup_subs[0]);
  const char *p3[] = {"setup", "nope"};
  assert_null(souk__cmd_lookup(p3, 2));
  assert_ptr_equal(souk__cmd_at(3, &mod), &market_cmds[3]);
  assert_null(souk__cmd_at(6, NULL));
  /* The same names again are refused, and nothing is half-added. */
  assert_int_equal(souk__cmd_register(market_cmds, "other"), SOUK_EEXIST);
  assert_int_equal(souk__cmd_count(), 6);
  souk__cmd_clear();
  assert_int_equal(souk__cmd_count(), 0);
}

static void test_register_rules(void **state) {
  souk__cmd_clear();
  static const char long_desc[] =
      "0123456789012345678901234567890123456789012345678901234567890123456789"
      "012345678901234567890123456789X";
  assert_int_equal(reg1(&(struct souk_command){.name = "ok", .description = "d", .handler = h}), 0);
  assert_int_equal(reg1(&(struct souk_command){.name = "Bad", .description = "d", .handler = h}),
                   SOUK_EINVAL);
  assert_non_null(strstr(souk__cmd_last_error(), "t: command `Bad`: name must be"));
  assert_int_equal(reg1(&(struct souk_command){.name = "", .description = "d", .handler = h}),
                   SOUK_EINVAL);
  assert_int_equal(
      reg1(&(struct souk_command){.name = "has space", .description = "d", .handler = h}),
      SOUK_EINVAL);
  assert_int_equal(reg1(&(struct souk_command){.name = "abcdefghijklmnopqrstuvwxyz0123456",
                                               .description = "d",
                                               .handler = h}),
                   SOUK_EINVAL); /* 33 characters */
  assert_int_equal(reg1(&(struct souk_command){.name = "abcdefghijklmnopqrstuvwxyz-_1234",
                                               .description = "d",
                                               .handler = h}),
                   0); /* 32 */
  assert_int_equal(reg1(&(struct souk_command){.name = "nodesc", .description = "", .handler = h}),
                   SOUK_EINVAL);
  assert_int_equal(
      reg1(&(struct souk_command){.name = "longdesc", .description = long_desc, .handler = h}),
      SOUK_EINVAL);
  /* 100 characters of UTF-8 count as 100, not as their bytes. */
  char umlauts[2 * 100 + 1] = {0};
  for (int i = 0; i < 100; i++)
    memcpy(umlauts + 2 * i, "\xc3\xa4", 2);
  assert_int_equal(
      reg1(&(struct souk_command){.name = "utf", .description = umlauts, .handler = h}), 0);
  assert_int_equal(reg1(&(struct souk_command){.name = "nohandler", .description = "d"}),
                   SOUK_EINVAL);
  assert_non_null(strstr(souk__cmd_last_error(), "has no handler"));

  /* Required options must come first. */
  static const souk_cmd_option_t order[] = {
      {.name = "a", .description = "d", .type = SOUK_OPT_STRING},
      {.name = "b", .description = "d", .type = SOUK_OPT_STRING, .required = true},
      {0}};
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "order", .description = "d", .options = order, .handler = h}),
                   SOUK_EINVAL);
  assert_non_null(strstr(souk__cmd_last_error(), "required option `b` comes after"));

  /* At most 25 options. */
  static souk_cmd_option_t many[27];
  static char names[26][4];
  for (int i = 0; i < 26; i++) {
    snprintf(names[i], sizeof names[i], "o%d", i);
    many[i] = (souk_cmd_option_t){.name = names[i], .description = "d", .type = SOUK_OPT_STRING};
  }
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "many", .description = "d", .options = many, .handler = h}),
                   SOUK_EINVAL);
  assert_non_null(strstr(souk__cmd_last_error(), "more than 25 options"));
  many[25] = (souk_cmd_option_t){0};
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "many25", .description = "d", .options = many, .handler = h}),
                   0);

  static const souk_cmd_option_t badopt[] = {
      {.name = "Amount", .description = "d", .type = SOUK_OPT_INTEGER}, {0}};
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "o1", .description = "d", .options = badopt, .handler = h}),
                   SOUK_EINVAL);
  static const souk_cmd_option_t dup[] = {
      {.name = "a", .description = "d", .type = SOUK_OPT_STRING},
      {.name = "a", .description = "d", .type = SOUK_OPT_STRING},
      {0}};
  assert_int_equal(
      reg1(&(struct souk_command){.name = "o2", .description = "d", .options = dup, .handler = h}),
      SOUK_EINVAL);
  static const souk_cmd_option_t range[] = {
      {.name = "a", .description = "d", .type = SOUK_OPT_INTEGER, SOUK_OPT_INT_RANGE(5, 1)}, {0}};
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "o3", .description = "d", .options = range, .handler = h}),
                   SOUK_EINVAL);
  static const souk_cmd_choice_t badch[] = {{"x", "notanint"}, {NULL}};
  static const souk_cmd_option_t choice[] = {
      {.name = "a", .description = "d", .type = SOUK_OPT_INTEGER, .choices = badch}, {0}};
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "o4", .description = "d", .options = choice, .handler = h}),
                   SOUK_EINVAL);
  static const souk_cmd_option_t acnoh[] = {
      {.name = "a", .description = "d", .type = SOUK_OPT_STRING, .autocomplete = true}, {0}};
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "o5", .description = "d", .options = acnoh, .handler = h}),
                   SOUK_EINVAL);
  static const souk_cmd_option_t notype[] = {{.name = "a", .description = "d"}, {0}};
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "o6", .description = "d", .options = notype, .handler = h}),
                   SOUK_EINVAL);

  /* Groups: no options or handler beside subcommands; two levels at most. */
  static const struct souk_command leaf[] = {{.name = "x", .description = "d", .handler = h}, {0}};
  static const struct souk_command lvl2[] = {{.name = "g", .description = "d", .subcommands = leaf},
                                             {0}};
  static const struct souk_command lvl3[] = {{.name = "h", .description = "d", .subcommands = lvl2},
                                             {0}};
  assert_int_equal(
      reg1(&(struct souk_command){.name = "deep2", .description = "d", .subcommands = lvl2}), 0);
  assert_int_equal(
      reg1(&(struct souk_command){.name = "deep3", .description = "d", .subcommands = lvl3}),
      SOUK_EINVAL);
  assert_string_equal(souk__cmd_last_error(),
                      "t: command `deep3 h g`: subcommands nest at most two levels deep");
  assert_int_equal(reg1(&(struct souk_command){
                       .name = "both", .description = "d", .subcommands = leaf, .handler = h}),
                   SOUK_EINVAL);
  /* A failed table adds nothing, even its valid commands. */
  size_t before = souk__cmd_count();
  static const struct souk_command mixed[] = {{.name = "fine", .description = "d", .handler = h},
                                              {.name = "NOT", .description = "d", .handler = h},
                                              {0}};
  assert_int_equal(souk__cmd_register(mixed, "t"), SOUK_EINVAL);
  assert_int_equal(souk__cmd_count(), before);
  assert_null(souk__cmd_find("fine", NULL));
}

/* --- Interactions ------------------------------------------------------- */

static int parse_text(const char *s, souk_cmd_args_t *a);

static int parse_json(const char *text, bool autocomplete, souk_cmd_args_t *a) {
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, strlen(text)), 0);
  int rc = souk__cmd_parse_interaction(&j, 0, autocomplete, a);
  souk_json_free(&j);
  return rc;
}

static void test_interaction_basic(void **state) {
  souk_cmd_args_t a;
  assert_int_equal(parse_json("{\"id\":\"1180000000000000001\",\"name\":\"buy\",\"type\":1,"
                              "\"options\":[{\"name\":\"symbol\",\"type\":3,\"value\":\"AAPL\"},"
                              "{\"name\":\"amount\",\"type\":4,\"value\":25},"
                              "{\"name\":\"limit\",\"type\":10,\"value\":187.5},"
                              "{\"name\":\"confirm\",\"type\":5,\"value\":true}]}",
                              false, &a),
                   0);
  assert_ptr_equal(a.cmd, &market_cmds[0]);
  assert_string_equal(a.module, "market");
  assert_string_equal(a.path, "buy");
  assert_string_equal(souk_cmd_arg_str(&a, "symbol", NULL), "AAPL");
  assert_int_equal(souk_cmd_arg_int(&a, "amount", 0), 25);
  assert_true(souk_cmd_arg_num(&a, "limit", 0) == 187.5);
  assert_true(souk_cmd_arg_bool(&a, "confirm", false));
  assert_null(souk_cmd_focused(&a));
  souk_cmd_args_free(&a);

  /* Ids come as strings; resolved data names the user. */
  assert_int_equal(parse_json("{\"id\":\"1\",\"name\":\"give\",\"type\":1,\"guild_id\":"
                              "\"613425648685547541\",\"options\":[{\"name\":\"user\",\"type\":6,"
                              "\"value\":\"80351110224678912\"},{\"name\":\"amount\",\"type\":4,"
                              "\"value\":50}],\"resolved\":{\"users\":{\"80351110224678912\":"
                              "{\"id\":\"80351110224678912\",\"username\":\"Nelly\"}}}}",
                              false, &a),
                   0);
  assert_true(souk_cmd_arg_id(&a, "user") == UINT64_C(80351110224678912));
  assert_string_equal(souk_cmd_arg(&a, "user")->text, "Nelly");
  assert_false(souk_cmd_arg(&a, "user")->bot);
  assert_null(souk_cmd_arg(&a, "note"));
  souk_cmd_args_free(&a);
  /* A member's nick wins over the names, and a bot is flagged. */
  assert_int_equal(parse_json("{\"id\":\"1\",\"name\":\"give\",\"type\":1,\"options\":[{"
                              "\"name\":\"user\",\"type\":6,\"value\":\"80351110224678912\"},"
                              "{\"name\":\"amount\",\"type\":4,\"value\":5}],\"resolved\":{"
                              "\"users\":{\"80351110224678912\":{\"id\":\"80351110224678912\","
                              "\"username\":\"hook\",\"global_name\":\"Hook\",\"bot\":true}},"
                              "\"members\":{\"80351110224678912\":{\"nick\":\"Captain\"}}}}",
                              false, &a),
                   0);
  assert_string_equal(souk_cmd_arg(&a, "user")->text, "Captain");
  assert_true(souk_cmd_arg(&a, "user")->bot);
  souk_cmd_args_free(&a);
  /* What a prefix message's mentions say, the surface sets the same way. */
  assert_int_equal(parse_text("give <@80351110224678912> 5", &a), 0);
  assert_null(souk_cmd_arg(&a, "user")->text);
  souk__cmd_args_user(&a, UINT64_C(80351110224678912), "Robo", true);
  souk__cmd_args_user(&a, UINT64_C(80351110224678913), "Other", false);
  assert_string_equal(souk_cmd_arg(&a, "user")->text, "Robo");
  assert_true(souk_cmd_arg(&a, "user")->bot);
  souk_cmd_args_free(&a);
}

static void test_interaction_groups(void **state) {
  souk_cmd_args_t a;
  assert_int_equal(parse_json("{\"id\":\"2\",\"name\":\"setup\",\"type\":1,\"options\":[{\"name\":"
                              "\"prefix\",\"type\":2,\"options\":[{\"name\":\"set\",\"type\":1,"
                              "\"options\":[{\"name\":\"prefix\",\"type\":3,\"value\":\"!\"}]}]}]}",
                              false, &a),
                   0);
  assert_ptr_equal(a.top, &market_cmds[3]);
  assert_ptr_equal(a.group, &setup_subs[1]);
  assert_ptr_equal(a.cmd, &prefix_subs[0]);
  assert_string_equal(a.path, "setup prefix set");
  assert_string_equal(souk_cmd_arg_str(&a, "prefix", NULL), "!");
  souk_cmd_args_free(&a);

  assert_int_equal(parse_json("{\"name\":\"setup\",\"type\":1,\"options\":[{\"name\":\"channel\","
                              "\"type\":1,\"options\":[{\"name\":\"channel\",\"type\":7,\"value\":"
                              "\"1100000000000000007\"},{\"name\":\"role\",\"type\":8,\"value\":"
                              "\"1100000000000000008\"}]}]}",
                              false, &a),
                   0);
  assert_null(a.group);
  assert_string_equal(a.path, "setup channel");
  assert_true(souk_cmd_arg_id(&a, "channel") == UINT64_C(1100000000000000007));
  assert_true(souk_cmd_arg_id(&a, "role") == UINT64_C(1100000000000000008));
  souk_cmd_args_free(&a);

  assert_int_equal(parse_json("{\"name\":\"setup\",\"type\":1}", false, &a), SOUK_EINVAL);
  assert_string_equal(a.error, "`/setup` needs a subcommand: `channel`, `prefix`.");
  souk_cmd_args_free(&a);
  assert_int_equal(
      parse_json("{\"name\":\"setup\",\"options\":[{\"name\":\"nope\",\"type\":1}]}", false, &a),
      SOUK_EINVAL);
  assert_string_equal(a.error, "Unknown subcommand `nope` of `/setup`; try `channel`, `prefix`.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_json("{\"name\":\"sell\",\"type\":1}", false, &a), SOUK_ENOTFOUND);
  assert_string_equal(a.error, "Unknown command `/sell`.");
  souk_cmd_args_free(&a);
}

static void test_interaction_autocomplete(void **state) {
  souk_cmd_args_t a;
  /* Type 4 (APPLICATION_COMMAND_AUTOCOMPLETE): the focused value is partial
   * and required options may still be missing. */
  assert_int_equal(parse_json("{\"id\":\"3\",\"name\":\"buy\",\"type\":1,\"options\":[{\"name\":"
                              "\"symbol\",\"type\":3,\"value\":\"AA\",\"focused\":true}]}",
                              true, &a),
                   0);
  const souk_cmd_arg_t *f = souk_cmd_focused(&a);
  assert_non_null(f);
  assert_string_equal(f->name, "symbol");
  assert_string_equal(f->text, "AA");
  souk_cmd_args_free(&a);
  assert_int_equal(
      parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                 "\"value\":\"MSFT\"},{\"name\":\"amount\",\"type\":4,\"value\":\"12\","
                 "\"focused\":true}]}",
                 true, &a),
      0);
  f = souk_cmd_focused(&a);
  assert_string_equal(f->name, "amount");
  assert_string_equal(f->text, "12");
  assert_int_equal(f->i, 12);
  souk_cmd_args_free(&a);
}

static void test_interaction_errors(void **state) {
  souk_cmd_args_t a;
  assert_int_equal(parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                              "\"value\":\"AAPL\"},{\"name\":\"amount\",\"type\":4,\"value\":"
                              "\"ten\"}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(a.error, "`amount` must be a whole number, like 10; `ten` is not.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                              "\"value\":\"AAPL\"},{\"name\":\"amount\",\"type\":4,\"value\":0}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(a.error, "`amount` must be from 1 to 1000000; 0 is too small.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                              "\"value\":\"AAPL\"}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(a.error, "`/buy` needs `amount` (How many shares).");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"qty\",\"type\":4,"
                              "\"value\":1}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(
      a.error, "`/buy` has no option `qty`; it takes `symbol`, `amount`, `limit` and `confirm`.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                              "\"value\":\"A\"},{\"name\":\"amount\",\"type\":4,\"value\":"
                              "99999999999999999999}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(a.error,
                      "`amount` must be from 1 to 1000000; 99999999999999999999 is too large.");
  souk_cmd_args_free(&a);
  /* The option type Discord states must match the table's. */
  assert_int_equal(parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                              "\"value\":\"A\"},{\"name\":\"amount\",\"type\":3,\"value\":"
                              "\"5\"}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(a.error, "`amount` must be a whole number, like 10.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_json("{\"name\":\"give\",\"options\":[{\"name\":\"user\",\"type\":6,"
                              "\"value\":80351110224678912},{\"name\":\"amount\",\"type\":4,"
                              "\"value\":1}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(
      a.error,
      "`user` must be a user: a mention (@name) or a user ID; `80351110224678912` is not.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_json("{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                              "\"value\":\"A\"},{\"name\":\"amount\",\"type\":4,\"value\":1},"
                              "{\"name\":\"limit\",\"type\":10,\"value\":100000.5}]}",
                              false, &a),
                   SOUK_EINVAL);
  assert_string_equal(a.error, "`limit` must be from 0.01 to 100000; 100000.5 is too large.");
  souk_cmd_args_free(&a);
}

/* --- Prefix and console text -------------------------------------------- */

static int parse_text(const char *s, souk_cmd_args_t *a) {
  return souk__cmd_parse_text(s, strlen(s), a);
}

static void test_text_positional_and_keys(void **state) {
  souk_cmd_args_t a;
  assert_int_equal(parse_text("buy AAPL 10", &a), 0);
  assert_string_equal(souk_cmd_arg_str(&a, "symbol", NULL), "AAPL");
  assert_int_equal(souk_cmd_arg_int(&a, "amount", 0), 10);
  souk_cmd_args_free(&a);
  /* Keys in any order; positionals fill the options not yet named. */
  assert_int_equal(parse_text("  BUY amount:7 MSFT confirm:yes limit:12.25", &a), 0);
  assert_string_equal(souk_cmd_arg_str(&a, "symbol", NULL), "MSFT");
  assert_int_equal(souk_cmd_arg_int(&a, "amount", 0), 7);
  assert_true(souk_cmd_arg_num(&a, "limit", 0) == 12.25);
  assert_true(souk_cmd_arg_bool(&a, "confirm", false));
  souk_cmd_args_free(&a);
  /* The console's form. */
  assert_int_equal(parse_text("/setup prefix set prefix:\"?\"", &a), 0);
  assert_string_equal(a.path, "setup prefix set");
  assert_string_equal(souk_cmd_arg_str(&a, "prefix", NULL), "?");
  souk_cmd_args_free(&a);
  for (const char *const *b = (const char *const[]){"true", "ON", "yes", NULL}; *b; b++) {
    char line[64];
    snprintf(line, sizeof line, "buy X 1 confirm:%s", *b);
    assert_int_equal(parse_text(line, &a), 0);
    assert_true(souk_cmd_arg_bool(&a, "confirm", false));
    souk_cmd_args_free(&a);
  }
  assert_int_equal(parse_text("buy X 1 confirm:off", &a), 0);
  assert_false(souk_cmd_arg_bool(&a, "confirm", true));
  souk_cmd_args_free(&a);
}

static void test_text_quotes_and_mentions(void **state) {
  souk_cmd_args_t a;
  assert_int_equal(parse_text("give <@80351110224678912> 5 \"for the \\\"win\\\"\"", &a), 0);
  assert_true(souk_cmd_arg_id(&a, "user") == UINT64_C(80351110224678912));
  assert_string_equal(souk_cmd_arg_str(&a, "note", NULL), "for the \"win\"");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("give <@!80351110224678912> 5 note:\"two words\"", &a), 0);
  assert_true(souk_cmd_arg_id(&a, "user") == UINT64_C(80351110224678912));
  assert_string_equal(souk_cmd_arg_str(&a, "note", NULL), "two words");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("give 80351110224678912 5 12:30", &a), 0);
  assert_string_equal(souk_cmd_arg_str(&a, "note", NULL), "12:30");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("setup channel <#1100000000000000007> <@&1100000000000000008>", &a),
                   0);
  assert_true(souk_cmd_arg_id(&a, "channel") == UINT64_C(1100000000000000007));
  assert_true(souk_cmd_arg_id(&a, "role") == UINT64_C(1100000000000000008));
  souk_cmd_args_free(&a);
  /* A role mention is not a user, nor a channel mention a role. */
  assert_int_equal(parse_text("give <@&80351110224678912> 5", &a), SOUK_EINVAL);
  assert_string_equal(
      a.error,
      "`user` must be a user: a mention (@name) or a user ID; `<@&80351110224678912>` is not.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("setup channel 1100000000000000007 <#1100000000000000008>", &a),
                   SOUK_EINVAL);
  assert_string_equal(
      a.error,
      "`role` must be a role: a mention (@role) or a role ID; `<#1100000000000000008>` is not.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("setup channel general", &a), SOUK_EINVAL);
  assert_string_equal(
      a.error,
      "`channel` must be a channel: a mention (#channel) or a channel ID; `general` is not.");
  souk_cmd_args_free(&a);
  /* Too short to be an id. */
  assert_int_equal(parse_text("give 12345 5", &a), SOUK_EINVAL);
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("give <@80351110224678912> 5 \"open", &a), SOUK_EINVAL);
  assert_string_equal(a.error, "Unterminated quote: add a closing `\"`.");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("give <@80351110224678912> 5 note:\"open", &a), SOUK_EINVAL);
  assert_string_equal(a.error, "Unterminated quote: add a closing `\"`.");
  souk_cmd_args_free(&a);
}

static void test_text_messages(void **state) {
  static const struct {
    const char *line, *msg;
  } cases[] = {
      {"buy AAPL", "`/buy` needs `amount` (How many shares)."},
      {"buy AAPL ten", "`amount` must be a whole number, like 10; `ten` is not."},
      {"buy AAPL 1.5", "`amount` must be a whole number, like 10; `1.5` is not."},
      {"buy AAPL 0", "`amount` must be from 1 to 1000000; 0 is too small."},
      {"buy AAPL 1000001", "`amount` must be from 1 to 1000000; 1000001 is too large."},
      {"buy AAPL 9223372036854775808",
       "`amount` must be from 1 to 1000000; 9223372036854775808 is too large."},
      {"buy AAPL -9223372036854775809",
       "`amount` must be from 1 to 1000000; -9223372036854775809 is too small."},
      {"buy AAPL 1 limit:abc", "`limit` must be a number, like 2.5; `abc` is not."},
      {"buy AAPL 1 limit:nan", "`limit` must be a number, like 2.5; `nan` is not."},
      {"buy AAPL 1 limit:0", "`limit` must be from 0.01 to 100000; 0 is too small."},
      {"buy AAPL 1 confirm:maybe", "`confirm` must be true or false; `maybe` is not."},
      {"buy ABCDEFGHIJK 1", "`symbol` must be 10 characters or fewer; `ABCDEFGHIJK` has 11."},
      {"buy AAPL 1 qty:3",
       "`/buy` has no option `qty`; it takes `symbol`, `amount`, `limit` and `confirm`."},
      {"buy AAPL 1 2.5 true extra", "Too many arguments: `/buy` takes at most 4."},
      {"buy AAPL 1 amount:2", "Option `amount` was given twice."},
      {"give 80351110224678912 0", "`amount` must be 1 or more; 0 is too small."},
      {"give 80351110224678912 1 x", "`note` must be 2 characters or more; `x` has 1."},
      {"pick side:hold", "`side` must be `buy` or `sell`; `hold` is not."},
      {"pick n:3", "`n` must be `1` or `2`; `3` is not."},
      {"reload now", "`/reload` takes no arguments."},
      {"sell AAPL", "Unknown command `sell`."},
      {"setup prefix", "`/setup prefix` needs a subcommand: `set`, `reset`."},
      {"setup prefix clear", "Unknown subcommand `clear` of `/setup prefix`; try `set`, `reset`."},
      {"setup prefix set prefix:toolong",
       "`prefix` must be 5 characters or fewer; `toolong` has 7."},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    souk_cmd_args_t a;
    int rc = parse_text(cases[i].line, &a);
    if (rc == 0 || strcmp(a.error, cases[i].msg) != 0)
      fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].line, rc, a.error, cases[i].msg);
    souk_cmd_args_free(&a);
  }
  /* Choices accept the value or the name a user sees; the handler gets the value. */
  souk_cmd_args_t a;
  assert_int_equal(parse_text("pick Sell 2", &a), 0);
  assert_string_equal(souk_cmd_arg_str(&a, "side", NULL), "sell");
  assert_int_equal(souk_cmd_arg_int(&a, "n", 0), 2);
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("buy AAPL -0 limit:https://x", &a), SOUK_EINVAL);
  assert_string_equal(a.error, "`limit` must be a number, like 2.5; `https://x` is not.");
  souk_cmd_args_free(&a);
}

/* --- Checks ------------------------------------------------------------- */

static uint64_t fake_ms;
static uint64_t fake_now(void) { return fake_ms; }

static int check(const char *line, souk__cmd_caller_t *who, souk_cmd_args_t *a) {
  assert_int_equal(parse_text(line, a), 0);
  int rc = souk__cmd_check(a, who);
  souk_cmd_args_free(a);
  return rc;
}

static void test_checks(void **state) {
  souk_cmd_args_t a;
  static const uint64_t owners[] = {42, 43};
  souk__cmd_caller_t dm = {.user_id = 7, .owners = owners, .nowners = 2};
  souk__cmd_caller_t member = {.user_id = 7, .guild_id = 99, .owners = owners, .nowners = 2};

  assert_int_equal(check("give 80351110224678912 1", &dm, &a), SOUK_EFORBIDDEN);
  assert_string_equal(a.error, "`/give` can only be used in a server.");
  assert_int_equal(check("give 80351110224678912 1", &member, &a), 0);
  /* A parent's flags cover its subcommands. */
  assert_int_equal(check("setup prefix set !", &dm, &a), SOUK_EFORBIDDEN);
  assert_string_equal(a.error, "`/setup prefix set` can only be used in a server.");

  assert_int_equal(check("reload", &member, &a), SOUK_EFORBIDDEN);
  assert_string_equal(a.error, "`/reload` can only be used by the bot's owners.");
  souk__cmd_caller_t owner = {.user_id = 43, .owners = owners, .nowners = 2};
  assert_int_equal(check("reload", &owner, &a), 0);

  assert_int_equal(check("setup prefix set !", &member, &a), SOUK_EFORBIDDEN);
  assert_string_equal(a.error, "You need the Manage Server permission to use `/setup prefix set`.");
  member.permissions = SOUK_PERM_MANAGE_GUILD;
  assert_int_equal(check("setup prefix set !", &member, &a), 0);
  assert_int_equal(check("ping", &member, &a), SOUK_EFORBIDDEN);
  assert_string_equal(a.error,
                      "You need the Manage Channels and Manage Roles permissions to use `/ping`.");
  member.permissions = 0;
  assert_int_equal(check("ping", &member, &a), SOUK_EFORBIDDEN);
  assert_string_equal(a.error, "You need the Manage Channels, Manage Server and Manage Roles "
                               "permissions to use `/ping`.");
  member.permissions = SOUK_PERM_ADMINISTRATOR;
  assert_int_equal(check("ping", &member, &a), 0);
  assert_int_equal(check("setup channel 1100000000000000007", &member, &a), 0);
}

static void test_cooldown(void **state) {
  souk_cmd_args_t a;
  souk__cmd_set_clock(fake_now);
  fake_ms = 1000000;
  souk__cmd_caller_t u1 = {.user_id = 1, .guild_id = 9};
  souk__cmd_caller_t u2 = {.user_id = 2, .guild_id = 9};
  assert_int_equal(check("buy AAPL 1", &u1, &a), 0);
  fake_ms += 1;
  assert_int_equal(check("buy AAPL 1", &u1, &a), SOUK_ERATELIMIT);
  assert_string_equal(a.error, "You can use `/buy` again in 3 s."); /* 2999 ms rounds up */
  assert_int_equal(check("buy AAPL 1", &u2, &a), 0);                /* per user */
  fake_ms += 2000;
  assert_int_equal(check("buy AAPL 1", &u1, &a), SOUK_ERATELIMIT);
  assert_string_equal(a.error, "You can use `/buy` again in 1 s.");
  fake_ms += 999;
  assert_int_equal(check("buy AAPL 1", &u1, &a), 0);
  /* A subcommand's own cooldown, named by its path. */
  assert_int_equal(
      check("setup prefix reset",
            &(souk__cmd_caller_t){.user_id = 1, .guild_id = 9, .permissions = ~UINT64_C(0)}, &a),
      0);
  assert_int_equal(
      check("setup prefix reset",
            &(souk__cmd_caller_t){.user_id = 1, .guild_id = 9, .permissions = ~UINT64_C(0)}, &a),
      SOUK_ERATELIMIT);
  assert_string_equal(a.error, "You can use `/setup prefix reset` again in 1 s.");
  /* Many users: the table grows and drops expired entries. */
  for (uint64_t u = 100; u < 1100; u++) {
    fake_ms += 10;
    assert_int_equal(check("buy AAPL 1", &(souk__cmd_caller_t){.user_id = u, .guild_id = 9}, &a),
                     0);
  }
  assert_int_equal(check("buy AAPL 1", &(souk__cmd_caller_t){.user_id = 1099, .guild_id = 9}, &a),
                   SOUK_ERATELIMIT);
  assert_int_equal(check("buy AAPL 1", &(souk__cmd_caller_t){.user_id = 100, .guild_id = 9}, &a),
                   0);
}

/* --- Components --------------------------------------------------------- */

static void market_btn(souk_cmd_ctx_t *ctx) { (void)ctx; }
static void market_page(souk_cmd_ctx_t *ctx) { (void)ctx; }
static void help_btn(souk_cmd_ctx_t *ctx) { (void)ctx; }

/* What a reply quotes of a user's text: 24 characters at most, cut on a
 * UTF-8 boundary with "...", backticks made quotes; a small buffer gets
 * what fits and stays terminated. */
static void test_quote(void **state) {
  (void)state;
  char q[128];
  assert_string_equal(souk_cmd_quote(q, sizeof q, "a`b", 3), "a'b");
  const char *longer = "abcdefghijklmnopqrstuvwxyz";
  assert_string_equal(souk_cmd_quote(q, sizeof q, longer, strlen(longer)),
                      "abcdefghijklmnopqrstuvwx...");
  /* 25 two-byte characters: 24 kept whole. */
  char e[64] = "";
  for (int i = 0; i < 25; i++)
    strcat(e, "\xc3\xa9");
  souk_cmd_quote(q, sizeof q, e, strlen(e));
  assert_int_equal(strlen(q), 48 + 3);
  assert_memory_equal(q, e, 48);
  char small[6], three[3];
  memset(small, 'X', sizeof small);
  assert_string_equal(souk_cmd_quote(small, sizeof small, longer, strlen(longer)), "...");
  memset(three, 'X', sizeof three);
  assert_string_equal(souk_cmd_quote(three, sizeof three, longer, strlen(longer)), "");
  char tiny[10];
  assert_string_equal(souk_cmd_quote(tiny, sizeof tiny, longer, strlen(longer)), "ab...");
}

static void test_custom_id(void **state) {
  static const souk_cmd_component_t market[] = {
      {"market:", market_btn}, {"market:page:", market_page}, {NULL}};
  static const souk_cmd_component_t help[] = {{"help:", help_btn}, {NULL}};
  assert_int_equal(souk__cmd_component_register(market, "market"), 0);
  assert_int_equal(souk__cmd_component_register(help, "help"), 0);
  assert_int_equal(souk__cmd_component_register(help, "again"), SOUK_EEXIST);
  static const souk_cmd_component_t bad[] = {{"", help_btn}, {NULL}};
  assert_int_equal(souk__cmd_component_register(bad, "bad"), SOUK_EINVAL);

  souk__cmd_route_t r;
  assert_int_equal(souk__cmd_route_custom_id("market:buy:AAPL:10", &r), 0);
  assert_ptr_equal(r.component->fn, market_btn);
  assert_string_equal(r.module, "market");
  assert_string_equal(r.state, "buy:AAPL:10");
  assert_int_equal(souk__cmd_route_custom_id("market:page:3", &r), 0); /* longest prefix */
  assert_ptr_equal(r.component->fn, market_page);
  assert_string_equal(r.state, "3");
  assert_int_equal(souk__cmd_route_custom_id("help:", &r), 0);
  assert_string_equal(r.state, "");
  assert_int_equal(souk__cmd_route_custom_id("stats:x", &r), SOUK_ENOTFOUND);

  char id[SOUK_CMD_CUSTOM_ID_MAX + 1], state100[128];
  memset(state100, 'x', 93);
  state100[93] = '\0';
  assert_int_equal(souk_cmd_custom_id(id, sizeof id, "market:", state100), 0); /* 7 + 93 */
  assert_int_equal(strlen(id), 100);
  assert_int_equal(souk__cmd_route_custom_id(id, &r), 0);
  strcat(state100, "x");
  assert_int_equal(souk_cmd_custom_id(id, sizeof id, "market:", state100), SOUK_ETOOBIG);
  assert_string_equal(id, "");
  char big[160];
  snprintf(big, sizeof big, "market:%s", state100);
  assert_int_equal(souk__cmd_route_custom_id(big, &r), SOUK_EINVAL);
  /* A small buffer is refused, not overrun. */
  char small[8];
  assert_int_equal(souk_cmd_custom_id(small, sizeof small, "market:", "1"), SOUK_ETOOBIG);
  assert_int_equal(souk_cmd_custom_id(small, sizeof small, "help:", "12"), 0);
  assert_string_equal(small, "help:12");
}

/* Robustness: random lines built from the parser's special characters
 * must parse or fail with a message, never crash (run under ASan too). */
static void test_text_random(void **state) {
  static const char alphabet[] = "buy give setup prefix set channel AAPL 1 -9 x:\"\\<@!&#>:// ";
  uint64_t seed = 0x9E3779B97F4A7C15u;
  char line[96];
  for (int iter = 0; iter < 20000; iter++) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    size_t n = (size_t)(seed % sizeof line);
    uint64_t r = seed;
    for (size_t i = 0; i < n; i++) {
      r = r * 6364136223846793005u + 1442695040888963407u;
      line[i] = alphabet[(r >> 33) % (sizeof alphabet - 1)];
    }
    souk_cmd_args_t a;
    int rc = souk__cmd_parse_text(line, n, &a);
    if (rc) assert_true(a.error[0] != '\0');
    souk_cmd_args_free(&a);
  }
}

/* --- Aliases ------------------------------------------------------------- */

static const souk_cmd_alias_t aliases[] = {
    {"purchase", "buy"},
    {"set prefix", "setup prefix set"},
    {"pc", "setup channel"},
    {"setup chan", "setup channel"}, /* longer than the command's own first word */
    {0}};

static void test_aliases(void **state) {
  assert_int_equal(souk__cmd_alias_register(aliases, "market"), 0);
  assert_int_equal(souk__cmd_aliases_check(), 0);
  assert_int_equal(souk_cmd_alias_count(), 4);
  const char *mod = NULL;
  assert_string_equal(souk_cmd_alias_at(1, &mod)->name, "set prefix");
  assert_string_equal(mod, "market");
  assert_null(souk_cmd_alias_at(4, NULL));
  souk_cmd_args_t a;
  /* The rest of the text follows the target, positional or keyed. */
  assert_int_equal(parse_text("purchase AAPL 10", &a), 0);
  assert_string_equal(a.path, "buy");
  assert_string_equal(souk_cmd_arg_str(&a, "symbol", NULL), "AAPL");
  assert_int_equal(souk_cmd_arg_int(&a, "amount", 0), 10);
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("/SET  Prefix \"?\"", &a), 0);
  assert_string_equal(a.path, "setup prefix set");
  assert_string_equal(souk_cmd_arg_str(&a, "prefix", NULL), "?");
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("setup chan <#1100000000000000007>", &a), 0);
  assert_string_equal(a.path, "setup channel");
  assert_true(souk_cmd_arg_id(&a, "channel") == UINT64_C(1100000000000000007));
  souk_cmd_args_free(&a);
  /* Only whole words match, and errors name the target. */
  assert_int_equal(parse_text("purchases AAPL 10", &a), SOUK_ENOTFOUND);
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("set", &a), SOUK_ENOTFOUND);
  souk_cmd_args_free(&a);
  assert_int_equal(parse_text("purchase AAPL", &a), SOUK_EINVAL);
  assert_string_equal(a.error, "`/buy` needs `amount` (How many shares).");
  souk_cmd_args_free(&a);
  /* The command's own words still work. */
  assert_int_equal(parse_text("setup channel <#1100000000000000007>", &a), 0);
  souk_cmd_args_free(&a);
  /* An interaction never goes through an alias. */
  souk_json_t j = {0};
  const char *data = "{\"name\":\"purchase\",\"options\":[]}";
  assert_int_equal(souk_json_parse(&j, data, strlen(data)), 0);
  assert_int_equal(souk__cmd_parse_interaction(&j, 0, false, &a), SOUK_ENOTFOUND);
  souk_cmd_args_free(&a);
  souk_json_free(&j);
}

static void test_alias_rules(void **state) {
  static const souk_cmd_alias_t bad_name[] = {{"Purchase", "buy"}, {0}};
  assert_int_equal(souk__cmd_alias_register(bad_name, "m"), SOUK_EINVAL);
  static const souk_cmd_alias_t two_spaces[] = {{"a  b", "buy"}, {0}};
  assert_int_equal(souk__cmd_alias_register(two_spaces, "m"), SOUK_EINVAL);
  static const souk_cmd_alias_t four[] = {{"a b c d", "buy"}, {0}};
  assert_int_equal(souk__cmd_alias_register(four, "m"), SOUK_EINVAL);
  static const souk_cmd_alias_t twice[] = {{"x", "buy"}, {"x", "give"}, {0}};
  assert_int_equal(souk__cmd_alias_register(twice, "m"), SOUK_EINVAL);
  assert_int_equal(souk_cmd_alias_count(), 0); /* all or nothing */
  static const souk_cmd_alias_t ok[] = {{"x", "buy"}, {0}};
  assert_int_equal(souk__cmd_alias_register(ok, "m"), 0);
  static const souk_cmd_alias_t again[] = {{"x", "give"}, {0}};
  assert_int_equal(souk__cmd_alias_register(again, "n"), SOUK_EEXIST);
  /* Targets are checked once every command is in. */
  static const souk_cmd_alias_t group[] = {{"y", "setup prefix"}, {0}};
  assert_int_equal(souk__cmd_alias_register(group, "m"), 0);
  assert_int_equal(souk__cmd_aliases_check(), SOUK_EINVAL);
  assert_non_null(strstr(souk__cmd_last_error(), "`setup prefix` is not a command"));
  souk__cmd_clear();
  assert_int_equal(souk__cmd_register(market_cmds, "market"), 0);
  static const souk_cmd_alias_t missing[] = {{"z", "sell"}, {0}};
  assert_int_equal(souk__cmd_alias_register(missing, "m"), 0);
  assert_int_equal(souk__cmd_aliases_check(), SOUK_EINVAL);
  souk__cmd_clear();
  assert_int_equal(souk__cmd_register(market_cmds, "market"), 0);
  static const souk_cmd_alias_t self[] = {{"buy", "buy"}, {0}};
  assert_int_equal(souk__cmd_alias_register(self, "m"), 0);
  assert_int_equal(souk__cmd_aliases_check(), SOUK_EINVAL);
}

/* What souk_cmd_args_line writes, the parser reads back to the same
 * arguments: what a gate keeps to run a command again later. */
static void test_args_line(void **state) {
  static const char *const lines[] = {
      "buy AAPL 10 limit:12.25 confirm:true",
      "give <@80351110224678912> 5 \"for the \\\"win\\\" \\\\ ok\"",
      "setup channel <#1100000000000000007> <@&1100000000000000008>",
      "setup channel <#000000000131864358>", /* an id typed with leading zeros */
      "setup prefix set \"a b\"",
      "buy X 1 limit:0.1",
      "reload",
      NULL};
  for (const char *const *l = lines; *l; l++) {
    souk_cmd_args_t a, b;
    assert_int_equal(parse_text(*l, &a), 0);
    souk_buf_t out = {0};
    assert_int_equal(souk_cmd_args_line(&a, &out), 0);
    if (parse_text(out.data, &b) != 0) fail_msg("%s -> %s: %s", *l, out.data, b.error);
    assert_string_equal(a.path, b.path);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
      const souk_cmd_arg_t *x = &a.v[i], *y = souk_cmd_arg(&b, x->name);
      assert_non_null(y);
      assert_int_equal(x->type, y->type);
      assert_true(x->i == y->i && x->b == y->b && x->id == y->id && x->num == y->num);
      if (x->text) assert_string_equal(x->text, y->text);
    }
    souk_buf_free(&out);
    souk_cmd_args_free(&a);
    souk_cmd_args_free(&b);
  }
  souk_cmd_args_t none = {0};
  souk_buf_t out = {0};
  assert_int_equal(souk_cmd_args_line(&none, &out), SOUK_EINVAL);
}

static void gate_fn(souk_cmd_ctx_t *ctx, void *ud) { (void)ctx, (void)ud; }

static void test_gate_register(void **state) {
  static int ud;
  assert_int_equal(souk_cmd_gate_register("tos", gate_fn, &ud), 0);
  assert_int_equal(souk_cmd_gate_register("tos", gate_fn, NULL), SOUK_EEXIST);
  assert_int_equal(souk_cmd_gate_register("Bad Name", gate_fn, NULL), SOUK_EINVAL);
  assert_int_equal(souk_cmd_gate_register("x", NULL, NULL), SOUK_EINVAL);
  void *got = NULL;
  assert_ptr_equal(souk__cmd_gate_find("tos", &got), gate_fn);
  assert_ptr_equal(got, &ud);
  assert_null(souk__cmd_gate_find("other", NULL));
  souk__cmd_clear();
  assert_null(souk__cmd_gate_find("tos", NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alias_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gate_register, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_lookup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interaction_basic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interaction_groups, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interaction_autocomplete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interaction_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_positional_and_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_quotes_and_mentions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cooldown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_custom_id, setup, teardown),
      cmocka_unit_test(test_quote),
      cmocka_unit_test_setup_teardown(test_text_random, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
