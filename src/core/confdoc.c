/* `souk config-keys`: the key tables rendered as Markdown, so the README's
 * configuration reference is generated from the code it documents. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "souk/buf.h"

static const char *type_name(const souk_conf_key_t *k) {
  switch (k->type) {
  case SOUK_CONF_STRING: return "string";
  case SOUK_CONF_INT: return "integer";
  case SOUK_CONF_BOOL: return "boolean";
  case SOUK_CONF_ENUM: return "one of";
  case SOUK_CONF_DURATION: return "duration";
  case SOUK_CONF_SIZE: return "size";
  case SOUK_CONF_SNOWFLAKE: return "id";
  case SOUK_CONF_SNOWFLAKE_LIST: return "list of ids";
  case SOUK_CONF_STRING_LIST: return "list of strings";
  case SOUK_CONF_URL: return "URL";
  case SOUK_CONF_TOKEN: return "token";
  case SOUK_CONF_DOUBLE: return "number";
  }
  return "?";
}

static void env_name(souk_buf_t *b, const char *sec, const char *key) {
  souk_buf_puts(b, "SOUK_");
  for (const char *s = sec; *s; s++)
    souk_buf_putc(b, (*s == '.' || *s == '-') ? '_' : (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s));
  souk_buf_putc(b, '_');
  for (const char *s = key; *s; s++)
    souk_buf_putc(b, (*s == '.' || *s == '-') ? '_' : (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s));
}

/* Table cells: a '|' would end the cell early. */
static void cell(souk_buf_t *b, const char *s) {
  for (; s && *s; s++) {
    if (*s == '|') souk_buf_putc(b, '\\');
    souk_buf_putc(b, *s);
  }
}

void souk__config_keys_markdown(const souk_conf_section_t *secs, size_t nsecs, souk_buf_t *out) {
  souk_buf_puts(out, "| key | type | default | environment | run-time | description |\n");
  souk_buf_puts(out, "|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < nsecs; i++) {
    for (const souk_conf_key_t *k = secs[i].keys; k && k->name; k++) {
      souk_buf_printf(out, "| `%s.%s` | %s", secs[i].name, k->name, type_name(k));
      if (k->type == SOUK_CONF_ENUM && k->choices) {
        souk_buf_putc(out, ' ');
        for (size_t c = 0; k->choices[c]; c++)
          souk_buf_printf(out, "%s%s", c ? ", " : "", k->choices[c]);
      }
      souk_buf_puts(out, " | ");
      cell(out, k->def ? k->def : "—");
      souk_buf_puts(out, " | `");
      env_name(out, secs[i].name, k->name);
      souk_buf_printf(out, "` | %s | ", (k->flags & SOUK_CONF_RUNTIME) ? "yes" : "no");
      cell(out, k->help);
      if (k->flags & SOUK_CONF_ALIAS)
        souk_buf_printf(out, " (alias of `%s`: one value under two names)", k->choices[0]);
      souk_buf_printf(out, "%s |\n", (k->flags & SOUK_CONF_SECRET) ? " (secret: environment only)" : "");
    }
  }
}
