/* /help: built from the command registry at run time.  Commands are listed
 * by category, one page per category with buttons and a menu, filtered to
 * what the asking user may run; `/help command:<name>` shows one command
 * in full with its usage examples; the footer carries the bot's figures
 * (uptime, guilds, commands served). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "souk/buf.h"
#include "souk/cmd.h"
#include "souk/loop.h"
#include "souk/module.h"

#define HELP_CATEGORIES_MAX 25
#define HELP_COLOR 0x2F80ED

static uint64_t help_started_ms;

static const char *category_of(const souk_command_t *c) {
  return c->category && c->category[0] ? c->category : "General";
}

static void uptime_text(char *out, size_t cap) {
  uint64_t s = (souk_now_ms() - help_started_ms) / 1000;
  uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  if (d) snprintf(out, cap, "%" PRIu64 "d %" PRIu64 "h", d, h);
  else if (h) snprintf(out, cap, "%" PRIu64 "h %" PRIu64 "m", h, m);
  else snprintf(out, cap, "%" PRIu64 "m %" PRIu64 "s", m, s % 60);
}

static void footer_text(char *out, size_t cap) {
  char up[32];
  uptime_text(up, sizeof up);
  snprintf(out, cap, "Uptime %s \xC2\xB7 %" PRIu64 " servers \xC2\xB7 %" PRIu64 " commands served",
           up, souk_cmd_guilds(), souk_cmd_served());
}

static const char *type_name(souk_cmd_opt_type_t t) {
  switch (t) {
  case SOUK_OPT_STRING: return "text";
  case SOUK_OPT_INTEGER: return "whole number";
  case SOUK_OPT_NUMBER: return "number";
  case SOUK_OPT_BOOLEAN: return "true/false";
  case SOUK_OPT_USER: return "user";
  case SOUK_OPT_CHANNEL: return "channel";
  case SOUK_OPT_ROLE: return "role";
  default: return "value";
  }
}

/* The aliases of the command at path, as "`!perf`, `!p`" with the
 * guild's prefix for message commands, appended to b; returns how many. */
static size_t list_aliases(souk_buf_t *b, const char *path, const char *pfx) {
  size_t k = 0;
  for (size_t i = 0; i < souk_cmd_alias_count(); i++) {
    const souk_cmd_alias_t *a = souk_cmd_alias_at(i, NULL);
    if (strcmp(a->target, path) == 0) souk_buf_printf(b, "%s`%s%s`", k++ ? ", " : "", pfx, a->name);
  }
  return k;
}

/* Every leaf under c, as "`/path opts` - description" lines; pfx is the
 * guild's prefix, for the aliases. */
static void list_leaves(souk_buf_t *b, const souk_command_t *c, const char *prefix,
                        const char *pfx) {
  char path[128];
  snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? " " : "", c->name);
  if (c->subcommands) {
    for (const souk_command_t *s = c->subcommands; s->name; s++)
      list_leaves(b, s, path, pfx);
    return;
  }
  souk_buf_printf(b, "`/%s", path);
  for (const souk_cmd_option_t *o = c->options; o && o->name; o++)
    souk_buf_printf(b, o->required ? " %s" : " [%s]", o->name);
  souk_buf_printf(b, "` \xE2\x80\x94 %s", c->description);
  souk_buf_t also;
  souk_buf_init(&also);
  if (list_aliases(&also, path, pfx)) souk_buf_printf(b, " (also %s)", also.data);
  souk_buf_free(&also);
  souk_buf_putc(b, '\n');
}

/* The categories the caller may use, in registration order, each with
 * its command lines; returns how many. */
static size_t gather(const souk_cmd_ctx_t *ctx, const char **cats, souk_buf_t *bodies) {
  size_t ncats = 0;
  const char *module;
  for (size_t i = 0; i < souk_cmd_count(); i++) {
    const souk_command_t *c = souk_cmd_at(i, &module);
    if ((c->flags & SOUK_CMD_HIDDEN) || !souk_cmd_may_run(ctx, c)) continue;
    const char *cat = category_of(c);
    size_t k = 0;
    while (k < ncats && strcmp(cats[k], cat) != 0) k++;
    if (k == ncats) {
      if (ncats == HELP_CATEGORIES_MAX) continue;
      cats[ncats] = cat;
      souk_buf_init(&bodies[ncats]);
      ncats++;
    }
    list_leaves(&bodies[k], c, "", souk_cmd_prefix(ctx->guild_id));
  }
  return ncats;
}

/* One page per category, with buttons to page and a menu to jump; the
 * custom_ids carry the page and the number of pages, so a press on a help
 * message from before the command set changed is recognised as stale. */
static void help_page(souk_cmd_ctx_t *ctx, size_t page, bool update) {
  const char *cats[HELP_CATEGORIES_MAX];
  souk_buf_t bodies[HELP_CATEGORIES_MAX];
  size_t ncats = gather(ctx, cats, bodies);
  if (page >= ncats && ncats > 0) page = ncats - 1;
  char footer[160], title[96];
  footer_text(footer, sizeof footer);
  souk_embed_field_t field;
  souk_embed_t e = {.color = HELP_COLOR, .footer = footer};
  if (ncats == 0) {
    e.title = "souk commands";
    e.description = "There are no commands you can use here.";
  } else {
    snprintf(title, sizeof title, "souk commands \xE2\x80\x94 %s (%zu/%zu)", cats[page], page + 1,
             ncats);
    e.title = title;
    e.description = "Use `/help command:<name>` for one command's options and examples.";
    field = (souk_embed_field_t){cats[page], bodies[page].data, false};
    e.fields = &field;
    e.nfields = 1;
  }
  souk_component_t comps[3];
  souk_select_option_t opts[HELP_CATEGORIES_MAX];
  char prev_id[64], next_id[64], sel_id[64], vals[HELP_CATEGORIES_MAX][24], st[48];
  size_t nc = 0;
  if (ncats > 1) {
    snprintf(st, sizeof st, "%zu:%zu", page > 0 ? page - 1 : 0, ncats);
    souk_cmd_custom_id(prev_id, sizeof prev_id, "help:p:", st);
    snprintf(st, sizeof st, "%zu:%zu", page + 1 < ncats ? page + 1 : page, ncats);
    souk_cmd_custom_id(next_id, sizeof next_id, "help:p:", st);
    snprintf(st, sizeof st, "%zu", ncats);
    souk_cmd_custom_id(sel_id, sizeof sel_id, "help:s:", st);
    comps[nc++] = (souk_component_t){.custom_id = prev_id,
                                     .label = "\xE2\x97\x80 Previous",
                                     .style = SOUK_BUTTON_SECONDARY,
                                     .disabled = page == 0};
    comps[nc++] = (souk_component_t){.custom_id = next_id,
                                     .label = "Next \xE2\x96\xB6",
                                     .style = SOUK_BUTTON_PRIMARY,
                                     .disabled = page + 1 >= ncats};
    for (size_t k = 0; k < ncats; k++) {
      snprintf(vals[k], sizeof vals[k], "%zu", k);
      opts[k] = (souk_select_option_t){cats[k], vals[k], NULL};
    }
    comps[nc++] = (souk_component_t){.custom_id = sel_id,
                                     .label = "Jump to a category",
                                     .options = opts,
                                     .noptions = ncats};
  }
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .components = comps, .ncomponents = nc,
                  .ephemeral = true};
  if (update) souk_cmd_update(ctx, &m);
  else souk_cmd_reply(ctx, &m);
  for (size_t k = 0; k < ncats; k++) souk_buf_free(&bodies[k]);
}

static void help_all(souk_cmd_ctx_t *ctx) { help_page(ctx, 0, false); }

/* How many categories the caller sees now. */
static size_t category_count(const souk_cmd_ctx_t *ctx) {
  const char *cats[HELP_CATEGORIES_MAX];
  souk_buf_t bodies[HELP_CATEGORIES_MAX];
  size_t n = gather(ctx, cats, bodies);
  for (size_t k = 0; k < n; k++) souk_buf_free(&bodies[k]);
  return n;
}

static void stale(souk_cmd_ctx_t *ctx) {
  souk_msg_t m = {.content = "This help message is out of date. Run `/help` again.",
                  .ephemeral = true};
  souk_cmd_reply(ctx, &m);
}

/* "help:p:<page>:<pages>" */
static void help_button(souk_cmd_ctx_t *ctx) {
  char *end;
  unsigned long page = strtoul(ctx->state, &end, 10);
  if (*end != ':') {
    stale(ctx);
    return;
  }
  unsigned long pages = strtoul(end + 1, &end, 10);
  if (*end || pages != category_count(ctx) || page >= pages) {
    stale(ctx);
    return;
  }
  help_page(ctx, page, true);
}

/* "help:s:<pages>" with the picked page as the value. */
static void help_select(souk_cmd_ctx_t *ctx) {
  char *end;
  unsigned long pages = strtoul(ctx->state, &end, 10);
  if (*end || pages != category_count(ctx) || ctx->nvalues != 1) {
    stale(ctx);
    return;
  }
  unsigned long page = strtoul(ctx->values[0], &end, 10);
  if (*end || page >= pages) {
    stale(ctx);
    return;
  }
  help_page(ctx, page, true);
}

static void describe_options(souk_buf_t *b, const souk_command_t *c) {
  for (const souk_cmd_option_t *o = c->options; o && o->name; o++) {
    souk_buf_printf(b, "`%s` (%s%s) \xE2\x80\x94 %s", o->name, type_name(o->type),
                    o->required ? ", required" : "", o->description);
    if (o->choices) {
      souk_buf_puts(b, ": ");
      for (const souk_cmd_choice_t *ch = o->choices; ch->name; ch++)
        souk_buf_printf(b, "%s%s", ch == o->choices ? "" : ", ", ch->name);
    }
    if (o->type == SOUK_OPT_INTEGER && o->has_min && o->has_max)
      souk_buf_printf(b, " (%" PRId64 " to %" PRId64 ")", o->min_int, o->max_int);
    souk_buf_putc(b, '\n');
  }
}

static void help_one(souk_cmd_ctx_t *ctx, const char *name) {
  const char *module = NULL;
  const souk_command_t *c = NULL;
  for (size_t i = 0; i < souk_cmd_count(); i++) {
    const souk_command_t *x = souk_cmd_at(i, &module);
    if (strcmp(x->name, name[0] == '/' ? name + 1 : name) == 0) {
      c = x;
      break;
    }
  }
  if (!c || (c->flags & SOUK_CMD_HIDDEN) || !souk_cmd_may_run(ctx, c)) {
    souk_cmd_replyf(ctx, "There is no command `%s` you can use here. Try `/help`.", name);
    return;
  }
  souk_buf_t usage, opts, subs;
  souk_buf_init(&usage);
  souk_buf_init(&opts);
  souk_buf_init(&subs);
  for (const char *const *u = c->usage; u && *u; u++) souk_buf_printf(&usage, "`%s`\n", *u);
  if (c->subcommands)
    list_leaves(&subs, c, "", souk_cmd_prefix(ctx->guild_id));
  else describe_options(&opts, c);
  souk_buf_t also;
  souk_buf_init(&also);
  if (!c->subcommands) list_aliases(&also, c->name, souk_cmd_prefix(ctx->guild_id));
  souk_embed_field_t fields[5];
  size_t nf = 0;
  if (subs.len) fields[nf++] = (souk_embed_field_t){"Subcommands", subs.data, false};
  if (opts.len) fields[nf++] = (souk_embed_field_t){"Options", opts.data, false};
  if (usage.len) fields[nf++] = (souk_embed_field_t){"Examples", usage.data, false};
  if (also.len) fields[nf++] = (souk_embed_field_t){"Aliases", also.data, false};
  char extra[160] = "";
  if (c->flags & SOUK_CMD_OWNER_ONLY) snprintf(extra, sizeof extra, "Only the bot's owners.");
  else if (c->permissions) snprintf(extra, sizeof extra, "Needs server permissions.");
  else if (c->flags & SOUK_CMD_GUILD_ONLY) snprintf(extra, sizeof extra, "Servers only.");
  if (extra[0]) fields[nf++] = (souk_embed_field_t){"Who", extra, false};
  char title[64];
  snprintf(title, sizeof title, "/%s", c->name);
  char footer[160];
  footer_text(footer, sizeof footer);
  souk_embed_t e = {.title = title,
                    .description = c->description,
                    .color = HELP_COLOR,
                    .footer = footer,
                    .fields = fields,
                    .nfields = nf};
  souk_msg_t m = {.embeds = &e, .nembeds = 1, .ephemeral = true};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&usage);
  souk_buf_free(&opts);
  souk_buf_free(&subs);
  souk_buf_free(&also);
}

static void help_cmd(souk_cmd_ctx_t *ctx) {
  const char *name = souk_cmd_arg_str(ctx->args, "command", NULL);
  if (name) help_one(ctx, name);
  else help_all(ctx);
}

/* Suggest the command names the user may run that start with what was
 * typed. */
static void help_complete(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  const char *typed = f && f->text ? f->text : "";
  if (typed[0] == '/') typed++;
  size_t tl = strlen(typed);
  souk_cmd_choice_t out[SOUK_CMD_CHOICES_MAX];
  size_t n = 0;
  const char *module;
  for (size_t i = 0; i < souk_cmd_count() && n < SOUK_CMD_CHOICES_MAX; i++) {
    const souk_command_t *c = souk_cmd_at(i, &module);
    if ((c->flags & SOUK_CMD_HIDDEN) || !souk_cmd_may_run(ctx, c)) continue;
    if (strncmp(c->name, typed, tl) == 0) out[n++] = (souk_cmd_choice_t){c->name, c->name};
  }
  souk_cmd_choices(ctx, out, n);
}

static const souk_cmd_option_t help_options[] = {
    {.name = "command",
     .description = "Show one command in full",
     .type = SOUK_OPT_STRING,
     .autocomplete = true,
     .max_length = 32},
    {0},
};

static const char *const help_usage[] = {"/help", "/help command:ping", NULL};

static const souk_command_t help_commands[] = {
    {.name = "help",
     .description = "What souk can do: commands by category, or one command in full",
     .category = "General",
     .usage = help_usage,
     .options = help_options,
     .handler = help_cmd,
     .autocomplete = help_complete},
    {0},
};

static int help_init(const souk_module_ctx_t *ctx) {
  help_started_ms = souk_now_ms();
  return 0;
}

static const souk_cmd_component_t help_components[] = {
    {"help:p:", help_button},
    {"help:s:", help_select},
    {0},
};

const souk_module_t souk_help_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "help",
    .commands = help_commands,
    .components = help_components,
    .init = help_init,
};
