/* Discord JSON for messages, modals, autocomplete choices and application
 * commands (src/discord/dmsg.c), read back with souk's JSON reader.
 *
 * Limits are Discord's (docs: resources/message "Embed Limits",
 * interactions/message-components, interactions/application-commands):
 * embed title 256, description 4096, 25 fields, field name 256 and value
 * 1024, footer 2048, 6000 characters across all embeds of a message,
 * counted in Unicode code points; button labels 80; five action rows of
 * five buttons or one select; modal titles and labels 45; 25 choices.
 *
 * The last test also checks the produced bodies against Discord's OpenAPI
 * schema (tests/fixtures/discord/openapi.json) with python3-jsonschema,
 * and is skipped when that is not installed. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */

#include "core/cmdrun.h"
#include "discord/dmsg.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"

/* ---- helpers --------------------------------------------------------------- */

/* One generated document, parsed. */
typedef struct doc {
  souk_buf_t b;
  souk_json_t j;
} doc_t;

static void doc_parse(doc_t *d) {
  int rc = souk_json_parse(&d->j, d->b.data, d->b.len);
  if (rc != 0)
    fail_msg("invalid JSON at %u: %.*s", d->j.err_pos, (int)(d->b.len > 400 ? 400 : d->b.len),
             d->b.data);
}

static void doc_free(doc_t *d) {
  souk_json_free(&d->j);
  souk_buf_free(&d->b);
}

/* {message members} */
static void msg_doc(doc_t *d, const souk_msg_t *m, bool extras, bool replace, unsigned flags) {
  memset(d, 0, sizeof *d);
  souk_jw_t w;
  souk_jw_init(&w, &d->b);
  souk_jw_obj(&w);
  const char *c = m && m->content ? m->content : "";
  souk__dmsg_write(&w, m, c, strlen(c), extras, replace, flags);
  souk_jw_end(&w);
  doc_parse(d);
}

static char *str_at(doc_t *d, int t) {
  char *s = souk_json_strdup(&d->j, t);
  if (!s) fail_msg("token %d is not a string", t);
  return s;
}

/* Code points of s, checking that s is valid UTF-8 with no U+FFFD (the
 * writer's replacement for a split or invalid sequence). */
static size_t cps(const char *s) {
  size_t n = 0, len = strlen(s);
  for (size_t i = 0; i < len;) {
    size_t l = souk_utf8_seq((const unsigned char *)s + i, len - i);
    if (l == 0) fail_msg("invalid UTF-8 at byte %zu", i);
    if (l == 3 && memcmp(s + i, "\xEF\xBF\xBD", 3) == 0) fail_msg("U+FFFD at byte %zu", i);
    i += l;
    n++;
  }
  return n;
}

static bool ends_with_ellipsis(const char *s) {
  size_t n = strlen(s);
  return n >= 3 && memcmp(s + n - 3, "\xE2\x80\xA6", 3) == 0;
}

/* Code points of string member key of obj (0 if absent). */
static size_t member_cps(doc_t *d, int obj, const char *key) {
  int t = souk_json_get(&d->j, obj, key);
  if (t < 0) return 0;
  char *s = str_at(d, t);
  size_t n = cps(s);
  souk_free(s);
  return n;
}

/* n copies of the UTF-8 character ch (a static buffer per call site is
 * avoided: the caller frees). */
static char *rep(const char *ch, size_t n) {
  size_t l = strlen(ch);
  char *s = souk_malloc(l * n + 1);
  for (size_t i = 0; i < n; i++)
    memcpy(s + i * l, ch, l);
  s[l * n] = '\0';
  return s;
}

/* Characters an embed counts towards the 6000 (Discord's rule: title,
 * description, field names and values, footer text, author name). */
static size_t embed_total(doc_t *d, int e) {
  size_t n = member_cps(d, e, "title") + member_cps(d, e, "description");
  int fields = souk_json_get(&d->j, e, "fields");
  for (size_t i = 0; fields >= 0 && i < souk_json_count(&d->j, fields); i++) {
    int f = souk_json_at(&d->j, fields, i);
    n += member_cps(d, f, "name") + member_cps(d, f, "value");
  }
  int footer = souk_json_get(&d->j, e, "footer");
  if (footer >= 0) n += member_cps(d, footer, "text");
  return n;
}

static size_t all_embeds_total(doc_t *d) {
  int embeds = souk_json_get(&d->j, 0, "embeds");
  size_t n = 0;
  for (size_t i = 0; embeds >= 0 && i < souk_json_count(&d->j, embeds); i++)
    n += embed_total(d, souk_json_at(&d->j, embeds, i));
  return n;
}

static void assert_no_mentions(doc_t *d, int obj) {
  int am = souk_json_get(&d->j, obj, "allowed_mentions");
  assert_int_equal(souk_json_type(&d->j, am), SOUK_JSON_OBJECT);
  assert_int_equal(souk_json_count(&d->j, am), 1);
  int parse = souk_json_get(&d->j, am, "parse");
  assert_int_equal(souk_json_type(&d->j, parse), SOUK_JSON_ARRAY);
  assert_int_equal(souk_json_count(&d->j, parse), 0);
}

static int64_t int_of(doc_t *d, int t) {
  int64_t v = 0;
  assert_int_equal(souk_json_type(&d->j, t), SOUK_JSON_NUMBER);
  assert_int_equal(souk_json_i64(&d->j, t, &v), 0);
  return v;
}

static int setup(void **state) {
  (void)state;
  souk_log_set_level(SOUK_LOG_OFF);
  souk__cmd_clear();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  souk__cmd_clear();
  return 0;
}

/* ---- message bodies ------------------------------------------------------------ */

/* Content as given; allowed_mentions parses nothing, always; flags only
 * when set; with replace, content/embeds/components are always written. */
static void test_content_and_mentions(void **state) {
  (void)state;
  doc_t d;
  souk_msg_t m = {.content = "hello @everyone <@123> \"quoted\" \\ \n line"};
  msg_doc(&d, &m, true, false, 0);
  char *c = str_at(&d, souk_json_get(&d.j, 0, "content"));
  assert_string_equal(c, m.content);
  souk_free(c);
  assert_no_mentions(&d, 0);
  assert_int_equal(souk_json_get(&d.j, 0, "flags"), -1);
  assert_int_equal(souk_json_get(&d.j, 0, "embeds"), -1);
  assert_int_equal(souk_json_get(&d.j, 0, "components"), -1);
  doc_free(&d);

  msg_doc(&d, &m, true, false, SOUK_DMSG_EPHEMERAL);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, 0, "flags")), 64);
  assert_no_mentions(&d, 0);
  doc_free(&d);

  /* A chunk of the content: clen bytes only. */
  memset(&d, 0, sizeof d);
  souk_jw_t w;
  souk_jw_init(&w, &d.b);
  souk_jw_obj(&w);
  souk__dmsg_write(&w, &m, m.content, 5, false, false, 0);
  souk_jw_end(&w);
  doc_parse(&d);
  c = str_at(&d, souk_json_get(&d.j, 0, "content"));
  assert_string_equal(c, "hello");
  souk_free(c);
  assert_no_mentions(&d, 0);
  doc_free(&d);

  /* No content (an embed-only message): no content member, mentions still
   * off. */
  static const souk_embed_t e = {.title = "T"};
  souk_msg_t only = {.embeds = &e, .nembeds = 1};
  msg_doc(&d, &only, true, false, 0);
  assert_int_equal(souk_json_get(&d.j, 0, "content"), -1);
  assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, 0, "embeds")), 1);
  assert_no_mentions(&d, 0);
  doc_free(&d);

  /* Without extras, embeds and components are not written. */
  static const souk_component_t b = {.custom_id = "x:1", .label = "B"};
  souk_msg_t full = {
      .content = "x", .embeds = &e, .nembeds = 1, .components = &b, .ncomponents = 1};
  msg_doc(&d, &full, false, false, 0);
  assert_int_equal(souk_json_get(&d.j, 0, "embeds"), -1);
  assert_int_equal(souk_json_get(&d.j, 0, "components"), -1);
  doc_free(&d);

  /* replace (editing @original): an empty message clears everything. */
  souk_msg_t empty = {0};
  msg_doc(&d, &empty, true, true, 0);
  c = str_at(&d, souk_json_get(&d.j, 0, "content"));
  assert_string_equal(c, "");
  souk_free(c);
  assert_int_equal(souk_json_type(&d.j, souk_json_get(&d.j, 0, "embeds")), SOUK_JSON_ARRAY);
  assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, 0, "embeds")), 0);
  assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, 0, "components")), 0);
  assert_no_mentions(&d, 0);
  doc_free(&d);
  /* replace with embeds: those embeds, and components cleared. */
  msg_doc(&d, &only, true, true, 0);
  assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, 0, "embeds")), 1);
  assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, 0, "components")), 0);
  doc_free(&d);
  /* NULL message with replace */
  memset(&d, 0, sizeof d);
  souk_jw_init(&w, &d.b);
  souk_jw_obj(&w);
  souk__dmsg_write(&w, NULL, NULL, 0, true, true, 0);
  souk_jw_end(&w);
  doc_parse(&d);
  assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, 0, "embeds")), 0);
  assert_no_mentions(&d, 0);
  doc_free(&d);
}

/* Each embed member cut to its limit in code points, with "…" when cut,
 * never splitting a UTF-8 sequence; exact fits are not cut. */
static void test_embed_limits(void **state) {
  (void)state;
  char *title = rep("\xC3\xA9", 300);         /* é, 2 bytes */
  char *desc = rep("\xF0\x9F\x98\x80", 5000); /* 😀, 4 bytes */
  char *fname = rep("n", 300);
  char *fval = rep("\xE2\x82\xAC", 1500); /* €, 3 bytes */
  char *footer = rep("f", 3000);
  souk_embed_field_t fields[30];
  for (int i = 0; i < 30; i++)
    fields[i] = (souk_embed_field_t){"a", "b", i % 2 == 0};
  fields[0] = (souk_embed_field_t){fname, fval, false};
  souk_embed_t e[2] = {
      {.title = title, .description = desc, .url = "https://example.com/x", .color = 0x12345678},
      {.title = "second", .fields = fields, .nfields = 30, .footer = footer},
  };
  souk_msg_t m = {.embeds = e, .nembeds = 2};
  doc_t d;
  msg_doc(&d, &m, true, false, 0);
  int embeds = souk_json_get(&d.j, 0, "embeds");
  assert_int_equal(souk_json_count(&d.j, embeds), 2);
  int e0 = souk_json_at(&d.j, embeds, 0);
  char *t = str_at(&d, souk_json_get(&d.j, e0, "title"));
  assert_int_equal(cps(t), 256);
  assert_true(ends_with_ellipsis(t));
  assert_memory_equal(t, title, 255 * 2);
  souk_free(t);
  char *ds = str_at(&d, souk_json_get(&d.j, e0, "description"));
  assert_int_equal(cps(ds), 4096);
  assert_true(ends_with_ellipsis(ds));
  souk_free(ds);
  /* color keeps 24 bits */
  assert_int_equal(int_of(&d, souk_json_get(&d.j, e0, "color")), 0x345678);
  char *url = str_at(&d, souk_json_get(&d.j, e0, "url"));
  assert_string_equal(url, "https://example.com/x");
  souk_free(url);

  /* The second embed shares what is left of the 6000. */
  int e1 = souk_json_at(&d.j, embeds, 1);
  int fl = souk_json_get(&d.j, e1, "fields");
  assert_true(souk_json_count(&d.j, fl) <= 25);
  int f0 = souk_json_at(&d.j, fl, 0);
  char *n0 = str_at(&d, souk_json_get(&d.j, f0, "name"));
  assert_int_equal(cps(n0), 256);
  assert_true(ends_with_ellipsis(n0));
  souk_free(n0);
  char *v0 = str_at(&d, souk_json_get(&d.j, f0, "value"));
  assert_true(cps(v0) <= 1024);
  assert_true(ends_with_ellipsis(v0));
  souk_free(v0);
  assert_true(all_embeds_total(&d) <= 6000);
  doc_free(&d);

  /* One embed alone: fields capped at 25, value at 1024, footer at 2048,
   * inline flags kept. */
  souk_embed_t one = {.title = "x", .fields = fields, .nfields = 30, .footer = footer};
  souk_msg_t m1 = {.embeds = &one, .nembeds = 1};
  msg_doc(&d, &m1, true, false, 0);
  int o = souk_json_at(&d.j, souk_json_get(&d.j, 0, "embeds"), 0);
  fl = souk_json_get(&d.j, o, "fields");
  assert_int_equal(souk_json_count(&d.j, fl), 25);
  char *v = str_at(&d, souk_json_get(&d.j, souk_json_at(&d.j, fl, 0), "value"));
  assert_int_equal(cps(v), 1024);
  assert_true(ends_with_ellipsis(v));
  souk_free(v);
  bool inl = false;
  assert_int_equal(
      souk_json_bool(&d.j, souk_json_get(&d.j, souk_json_at(&d.j, fl, 2), "inline"), &inl), 0);
  assert_true(inl);
  assert_int_equal(souk_json_get(&d.j, souk_json_at(&d.j, fl, 1), "inline"), -1);
  /* 1 + 256 + 1024 + 24 * 2 + footer: the footer gets what is left */
  int ft = souk_json_get(&d.j, o, "footer");
  assert_true(ft >= 0);
  assert_int_equal(member_cps(&d, ft, "text"), 2048);
  assert_true(all_embeds_total(&d) <= 6000);
  doc_free(&d);

  /* Exactly at the limits: nothing cut, no ellipsis. */
  char *t256 = rep("\xF0\x9F\x98\x80", 256);
  char *v1024 = rep("v", 1024);
  souk_embed_field_t exact_f = {"name", v1024, false};
  souk_embed_t exact = {.title = t256, .fields = &exact_f, .nfields = 1};
  souk_msg_t m2 = {.embeds = &exact, .nembeds = 1};
  msg_doc(&d, &m2, true, false, 0);
  o = souk_json_at(&d.j, souk_json_get(&d.j, 0, "embeds"), 0);
  t = str_at(&d, souk_json_get(&d.j, o, "title"));
  assert_string_equal(t, t256);
  souk_free(t);
  v = str_at(&d,
             souk_json_get(&d.j, souk_json_at(&d.j, souk_json_get(&d.j, o, "fields"), 0), "value"));
  assert_string_equal(v, v1024);
  souk_free(v);
  doc_free(&d);

  /* More than 10 embeds: 10. */
  souk_embed_t many[12];
  for (int i = 0; i < 12; i++)
    many[i] = (souk_embed_t){.title = "e"};
  souk_msg_t m3 = {.embeds = many, .nembeds = 12};
  msg_doc(&d, &m3, true, false, 0);
  assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, 0, "embeds")), 10);
  doc_free(&d);

  /* Fields with empty names or values get a placeholder (both required). */
  souk_embed_field_t blank = {NULL, "", false};
  souk_embed_t be = {.fields = &blank, .nfields = 1};
  souk_msg_t m4 = {.embeds = &be, .nembeds = 1};
  msg_doc(&d, &m4, true, false, 0);
  o = souk_json_at(&d.j, souk_json_get(&d.j, 0, "embeds"), 0);
  int f = souk_json_at(&d.j, souk_json_get(&d.j, o, "fields"), 0);
  assert_true(member_cps(&d, f, "name") >= 1);
  assert_true(member_cps(&d, f, "value") >= 1);
  doc_free(&d);

  souk_free(title);
  souk_free(desc);
  souk_free(fname);
  souk_free(fval);
  souk_free(footer);
  souk_free(t256);
  souk_free(v1024);
}

/* Many large embeds: the 6000 shared characters are never exceeded, in
 * whichever member the budget runs out. */
static void test_embed_total_budget(void **state) {
  (void)state;
  char *big = rep("\xE2\x82\xAC", 4096);
  char *t = rep("T", 256);
  char *val = rep("v", 1024);
  souk_embed_field_t fields[25];
  for (int i = 0; i < 25; i++)
    fields[i] = (souk_embed_field_t){t, val, false};
  souk_embed_t e[10];
  for (int i = 0; i < 10; i++)
    e[i] = (souk_embed_t){
        .title = t, .description = big, .fields = fields, .nfields = 25, .footer = big};
  for (size_t n = 1; n <= 10; n++) {
    souk_msg_t m = {.embeds = e, .nembeds = n};
    doc_t d;
    msg_doc(&d, &m, true, false, 0);
    size_t total = all_embeds_total(&d);
    if (total > 6000) fail_msg("%zu embeds: %zu characters", n, total);
    /* and it is used up, not cut short */
    assert_true(total >= 5990);
    doc_free(&d);
  }
  souk_free(big);
  souk_free(t);
  souk_free(val);
}

/* Regression (dmsg.c:150-158, write_embed): when a field's name uses up the last
 * of the 6000-character budget, the value becomes a zero-width space, one
 * character over the limit, and Discord refuses the message with 400
 * ("Embed size exceeds maximum size of 6000"). */
static void test_embed_budget_field_placeholder(void **state) {
  (void)state;
  char *desc = rep("d", 4096); /* budget left: 1904 */
  char *v1 = rep("v", 1024);   /* 1 + 1024: 879 left */
  char *v2 = rep("w", 873);    /* 1 + 873: 5 left */
  souk_embed_field_t f[] = {{"a", v1, false}, {"b", v2, false}, {"abcdefghij", "z", false}};
  souk_embed_t e = {.description = desc, .fields = f, .nfields = 3};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  doc_t d;
  msg_doc(&d, &m, true, false, 0);
  size_t total = all_embeds_total(&d);
  souk_free(desc);
  souk_free(v1);
  souk_free(v2);
  doc_free(&d);
  if (total > 6000) fail_msg("embeds total %zu characters (> 6000)", total);
}

/* ---- components ----------------------------------------------------------------- */

static size_t row_len(doc_t *d, int rows, size_t i) {
  int row = souk_json_at(&d->j, rows, i);
  assert_int_equal(int_of(d, souk_json_get(&d->j, row, "type")), 1);
  return souk_json_count(&d->j, souk_json_get(&d->j, row, "components"));
}

static int comp_at(doc_t *d, int rows, size_t r, size_t k) {
  int row = souk_json_at(&d->j, rows, r);
  return souk_json_at(&d->j, souk_json_get(&d->j, row, "components"), k);
}

static void test_components(void **state) {
  (void)state;
  souk_component_t b[40];
  char ids[40][8];
  for (int i = 0; i < 40; i++) {
    snprintf(ids[i], sizeof ids[i], "b:%d", i);
    b[i] = (souk_component_t){.custom_id = ids[i], .label = "L", .style = SOUK_BUTTON_PRIMARY};
  }
  doc_t d;
  /* 7 buttons: 5 + 2 */
  souk_msg_t m = {.content = "x", .components = b, .ncomponents = 7};
  msg_doc(&d, &m, true, false, 0);
  int rows = souk_json_get(&d.j, 0, "components");
  assert_int_equal(souk_json_count(&d.j, rows), 2);
  assert_int_equal(row_len(&d, rows, 0), 5);
  assert_int_equal(row_len(&d, rows, 1), 2);
  int c = comp_at(&d, rows, 1, 1);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, c, "type")), 2);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, c, "style")), 1);
  char *id = str_at(&d, souk_json_get(&d.j, c, "custom_id"));
  assert_string_equal(id, "b:6");
  souk_free(id);
  doc_free(&d);

  /* 40 buttons: 5 rows of 5, the rest dropped */
  m.ncomponents = 40;
  msg_doc(&d, &m, true, false, 0);
  rows = souk_json_get(&d.j, 0, "components");
  assert_int_equal(souk_json_count(&d.j, rows), 5);
  for (size_t i = 0; i < 5; i++)
    assert_int_equal(row_len(&d, rows, i), 5);
  doc_free(&d);

  /* new_row starts a row; a select sits alone */
  static const souk_select_option_t opts[] = {{"One", "1", "the first"}, {"Two", "2", NULL}};
  souk_component_t mix[] = {
      {.custom_id = "a", .label = "A"},
      {.custom_id = "b", .label = "B", .new_row = true},
      {.custom_id = "c", .label = "C"},
      {.custom_id = "s", .label = "Pick one", .options = opts, .noptions = 2},
      {.custom_id = "d", .label = "D", .style = 99, .disabled = true},
      {.custom_id = "s2", .options = opts, .noptions = 1},
      {.custom_id = "e", .label = "E", .new_row = true},
  };
  souk_msg_t mm = {.content = "x", .components = mix, .ncomponents = 7};
  msg_doc(&d, &mm, true, false, 0);
  rows = souk_json_get(&d.j, 0, "components");
  /* [A] [B C] [select] [D] [select2] -> 5 rows; E would be a sixth */
  assert_int_equal(souk_json_count(&d.j, rows), 5);
  assert_int_equal(row_len(&d, rows, 0), 1);
  assert_int_equal(row_len(&d, rows, 1), 2);
  assert_int_equal(row_len(&d, rows, 2), 1);
  assert_int_equal(row_len(&d, rows, 3), 1);
  assert_int_equal(row_len(&d, rows, 4), 1);
  int sel = comp_at(&d, rows, 2, 0);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, sel, "type")), 3);
  char *ph = str_at(&d, souk_json_get(&d.j, sel, "placeholder"));
  assert_string_equal(ph, "Pick one");
  souk_free(ph);
  int so = souk_json_get(&d.j, sel, "options");
  assert_int_equal(souk_json_count(&d.j, so), 2);
  char *desc = str_at(&d, souk_json_get(&d.j, souk_json_at(&d.j, so, 0), "description"));
  assert_string_equal(desc, "the first");
  souk_free(desc);
  assert_int_equal(souk_json_get(&d.j, souk_json_at(&d.j, so, 1), "description"), -1);
  int dd = comp_at(&d, rows, 3, 0);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, dd, "style")), 2); /* bad style: secondary */
  bool dis = false;
  assert_int_equal(souk_json_bool(&d.j, souk_json_get(&d.j, dd, "disabled"), &dis), 0);
  assert_true(dis);
  doc_free(&d);

  /* Labels: cut at 80 characters; an empty label is not sent empty. */
  char *lab = rep("\xF0\x9F\x98\x80", 100);
  char *lab80 = rep("x", 80);
  souk_select_option_t many_opts[30];
  char *optlabel = rep("o", 150);
  for (int i = 0; i < 30; i++)
    many_opts[i] = (souk_select_option_t){optlabel, "v", optlabel};
  char *ph200 = rep("p", 200);
  souk_component_t lbl[] = {
      {.custom_id = "l1", .label = lab},
      {.custom_id = "l2", .label = lab80},
      {.custom_id = "l3", .label = ""},
      {.custom_id = "sel", .label = ph200, .options = many_opts, .noptions = 30},
  };
  souk_msg_t ml = {.content = "x", .components = lbl, .ncomponents = 4};
  msg_doc(&d, &ml, true, false, 0);
  rows = souk_json_get(&d.j, 0, "components");
  char *l = str_at(&d, souk_json_get(&d.j, comp_at(&d, rows, 0, 0), "label"));
  assert_int_equal(cps(l), 80);
  assert_true(ends_with_ellipsis(l));
  souk_free(l);
  l = str_at(&d, souk_json_get(&d.j, comp_at(&d, rows, 0, 1), "label"));
  assert_string_equal(l, lab80);
  souk_free(l);
  assert_true(member_cps(&d, comp_at(&d, rows, 0, 2), "label") >= 1);
  sel = comp_at(&d, rows, 1, 0);
  assert_int_equal(member_cps(&d, sel, "placeholder"), 150);
  so = souk_json_get(&d.j, sel, "options");
  assert_int_equal(souk_json_count(&d.j, so), 25);
  assert_int_equal(member_cps(&d, souk_json_at(&d.j, so, 0), "label"), 100);
  assert_int_equal(member_cps(&d, souk_json_at(&d.j, so, 0), "description"), 100);
  doc_free(&d);
  souk_free(lab);
  souk_free(lab80);
  souk_free(optlabel);
  souk_free(ph200);
}

/* ---- modals ------------------------------------------------------------------------ */

static void test_modal(void **state) {
  (void)state;
  char *title = rep("t", 60);
  char *label = rep("\xC3\xA9", 60);
  char *value = rep("v", 5000);
  souk_modal_field_t f[6] = {
      {.custom_id = "name",
       .label = "Name",
       .required = true,
       .min_length = 2,
       .max_length = 32,
       .placeholder = "Your name",
       .value = "Al"},
      {.custom_id = "about", .label = label, .paragraph = true, .max_length = 9000, .value = value},
      {.custom_id = "c3", .label = "3"},
      {.custom_id = "c4", .label = "4"},
      {.custom_id = "c5", .label = "5"},
      {.custom_id = "c6", .label = "6"},
  };
  souk_modal_t m = {.custom_id = "mod:form", .title = title, .fields = f, .nfields = 6};
  doc_t d;
  memset(&d, 0, sizeof d);
  souk_jw_t w;
  souk_jw_init(&w, &d.b);
  souk_jw_obj(&w);
  souk__dmsg_modal(&w, &m);
  souk_jw_end(&w);
  doc_parse(&d);
  char *s = str_at(&d, souk_json_get(&d.j, 0, "custom_id"));
  assert_string_equal(s, "mod:form");
  souk_free(s);
  assert_int_equal(member_cps(&d, 0, "title"), 45);
  int rows = souk_json_get(&d.j, 0, "components");
  assert_int_equal(souk_json_count(&d.j, rows), 5);
  for (size_t i = 0; i < 5; i++) {
    int row = souk_json_at(&d.j, rows, i);
    assert_int_equal(int_of(&d, souk_json_get(&d.j, row, "type")), 1);
    assert_int_equal(souk_json_count(&d.j, souk_json_get(&d.j, row, "components")), 1);
  }
  int t0 = souk_json_at(&d.j, souk_json_get(&d.j, souk_json_at(&d.j, rows, 0), "components"), 0);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, t0, "type")), 4);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, t0, "style")), 1);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, t0, "min_length")), 2);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, t0, "max_length")), 32);
  bool req = false;
  assert_int_equal(souk_json_bool(&d.j, souk_json_get(&d.j, t0, "required"), &req), 0);
  assert_true(req);
  s = str_at(&d, souk_json_get(&d.j, t0, "placeholder"));
  assert_string_equal(s, "Your name");
  souk_free(s);
  s = str_at(&d, souk_json_get(&d.j, t0, "value"));
  assert_string_equal(s, "Al");
  souk_free(s);
  int t1 = souk_json_at(&d.j, souk_json_get(&d.j, souk_json_at(&d.j, rows, 1), "components"), 0);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, t1, "style")), 2);
  assert_int_equal(member_cps(&d, t1, "label"), 45);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, t1, "max_length")), 4000);
  assert_true(member_cps(&d, t1, "value") <= 4000);
  assert_int_equal(souk_json_get(&d.j, t1, "min_length"), -1);
  doc_free(&d);
  souk_free(title);
  souk_free(label);
  souk_free(value);
}

/* ---- autocomplete choices ------------------------------------------------------------- */

static void choices_doc(doc_t *d, const souk_cmd_choice_t *c, size_t n, souk_cmd_opt_type_t type) {
  memset(d, 0, sizeof *d);
  souk_jw_t w;
  souk_jw_init(&w, &d->b);
  souk_jw_obj(&w);
  souk__dmsg_choices(&w, c, n, type);
  souk_jw_end(&w);
  doc_parse(d);
}

static void test_choices(void **state) {
  (void)state;
  doc_t d;
  souk_cmd_choice_t ints[] = {
      {"five", "5"}, {"abc", "abc"},  {"neg", "-3"}, {"empty", ""},
      {"", "7"},     {"frac", "1.5"}, {NULL, "8"},   {"big", "9007199254740991"}};
  choices_doc(&d, ints, 8, SOUK_OPT_INTEGER);
  int arr = souk_json_get(&d.j, 0, "choices");
  assert_int_equal(souk_json_count(&d.j, arr), 3);
  int c0 = souk_json_at(&d.j, arr, 0);
  char *name = str_at(&d, souk_json_get(&d.j, c0, "name"));
  assert_string_equal(name, "five");
  souk_free(name);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, c0, "value")), 5);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, souk_json_at(&d.j, arr, 1), "value")), -3);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, souk_json_at(&d.j, arr, 2), "value")),
                   INT64_C(9007199254740991));
  doc_free(&d);

  souk_cmd_choice_t nums[] = {{"q", "0.25"}, {"x", "x1"}, {"i", "3"}, {"e", "1e3"}};
  choices_doc(&d, nums, 4, SOUK_OPT_NUMBER);
  arr = souk_json_get(&d.j, 0, "choices");
  assert_int_equal(souk_json_count(&d.j, arr), 3);
  double v = 0;
  int t = souk_json_get(&d.j, souk_json_at(&d.j, arr, 0), "value");
  assert_int_equal(souk_json_type(&d.j, t), SOUK_JSON_NUMBER);
  assert_int_equal(souk_json_double(&d.j, t, &v), 0);
  assert_true(v > 0.2499 && v < 0.2501);
  doc_free(&d);

  /* Strings stay strings (even numeric-looking ones); names and values are
   * cut at 100 characters; at most 25 choices. */
  char *long_name = rep("n", 150);
  souk_cmd_choice_t strs[30];
  for (int i = 0; i < 30; i++)
    strs[i] = (souk_cmd_choice_t){"s", "12"};
  strs[0] = (souk_cmd_choice_t){long_name, long_name};
  choices_doc(&d, strs, 30, SOUK_OPT_STRING);
  arr = souk_json_get(&d.j, 0, "choices");
  assert_int_equal(souk_json_count(&d.j, arr), 25);
  assert_int_equal(member_cps(&d, souk_json_at(&d.j, arr, 0), "name"), 100);
  assert_int_equal(member_cps(&d, souk_json_at(&d.j, arr, 0), "value"), 100);
  t = souk_json_get(&d.j, souk_json_at(&d.j, arr, 1), "value");
  assert_int_equal(souk_json_type(&d.j, t), SOUK_JSON_STRING);
  doc_free(&d);
  souk_free(long_name);

  /* No choices: an empty array (the late autocomplete answer). */
  choices_doc(&d, NULL, 0, SOUK_OPT_STRING);
  arr = souk_json_get(&d.j, 0, "choices");
  assert_int_equal(souk_json_type(&d.j, arr), SOUK_JSON_ARRAY);
  assert_int_equal(souk_json_count(&d.j, arr), 0);
  doc_free(&d);
}

/* Regression (dmsg.c:351-361, souk__dmsg_choices): a numeric value is validated
 * with strtoll/strtod but written raw, so text that C accepts and JSON
 * does not ("+5", " 7", "0x1A" for NUMBER, "nan", "inf", "007") makes the
 * whole interaction response invalid JSON: over HTTP souk__ix_respond
 * refuses it (and the ix is leaked, see the review), over the gateway
 * Discord answers 400.  Each value must be dropped or written as a JSON
 * number. */
static void test_choices_raw_numbers(void **state) {
  (void)state;
  static const char *const bad_int[] = {"+5", " 7", "007", "5 "};
  static const char *const bad_num[] = {"+1.5", "0x1A", "nan", "inf", ".5", "1."};
  int failures = 0;
  char what[512] = "";
  for (size_t i = 0; i < sizeof bad_int / sizeof *bad_int + sizeof bad_num / sizeof *bad_num; i++) {
    bool isint = i < sizeof bad_int / sizeof *bad_int;
    const char *val = isint ? bad_int[i] : bad_num[i - sizeof bad_int / sizeof *bad_int];
    souk_cmd_choice_t c[] = {{"ok", "1"}, {"bad", val}};
    souk_buf_t b = {0};
    souk_jw_t w;
    souk_jw_init(&w, &b);
    souk_jw_obj(&w);
    souk__dmsg_choices(&w, c, 2, isint ? SOUK_OPT_INTEGER : SOUK_OPT_NUMBER);
    souk_jw_end(&w);
    souk_json_t j = {0};
    bool ok = souk_json_parse(&j, b.data, b.len) == 0;
    if (ok) {
      /* every value present is a JSON number */
      int arr = souk_json_get(&j, 0, "choices");
      for (size_t k = 0; k < souk_json_count(&j, arr); k++) {
        double dv;
        int t = souk_json_get(&j, souk_json_at(&j, arr, k), "value");
        if (souk_json_type(&j, t) != SOUK_JSON_NUMBER || souk_json_double(&j, t, &dv) != 0)
          ok = false;
      }
    }
    if (!ok) {
      failures++;
      size_t l = strlen(what);
      snprintf(what + l, sizeof what - l, " [%s]", val);
    }
    souk_json_free(&j);
    souk_buf_free(&b);
  }
  if (failures) fail_msg("%d value(s) produced invalid JSON:%s", failures, what);
}

/* ---- application commands ------------------------------------------------------------- */

static void noop(souk_cmd_ctx_t *ctx) { (void)ctx; }

static const souk_cmd_choice_t side_choices[] = {{"Buy", "buy"}, {"Sell", "sell"}, {NULL}};
static const souk_cmd_choice_t n_choices[] = {{"One", "1"}, {"Two", "2"}, {NULL}};
static const souk_cmd_option_t buy_opts[] = {
    {.name = "symbol",
     .description = "Ticker",
     .type = SOUK_OPT_STRING,
     .required = true,
     .autocomplete = true,
     .min_length = 1,
     .max_length = 10},
    {.name = "amount",
     .description = "Shares",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     SOUK_OPT_INT_RANGE(1, 1000000)},
    {.name = "limit",
     .description = "Limit price",
     .type = SOUK_OPT_NUMBER,
     SOUK_OPT_NUM_RANGE(0.01, 100000.5)},
    {.name = "side", .description = "Side", .type = SOUK_OPT_STRING, .choices = side_choices},
    {.name = "n", .description = "Count", .type = SOUK_OPT_INTEGER, .choices = n_choices},
    {.name = "who", .description = "User", .type = SOUK_OPT_USER},
    {.name = "where", .description = "Channel", .type = SOUK_OPT_CHANNEL},
    {.name = "role", .description = "Role", .type = SOUK_OPT_ROLE},
    {.name = "yes", .description = "Bool", .type = SOUK_OPT_BOOLEAN},
    {0}};
static const souk_cmd_option_t set_opts[] = {
    {.name = "value", .description = "Value", .type = SOUK_OPT_STRING, .required = true}, {0}};
static const struct souk_command prefix_subs[] = {
    {.name = "set", .description = "Set it", .options = set_opts, .handler = noop},
    {.name = "reset", .description = "Reset it", .handler = noop},
    {0}};
static const struct souk_command setup_subs[] = {
    {.name = "prefix", .description = "Prefix", .subcommands = prefix_subs},
    {.name = "show", .description = "Show", .handler = noop},
    {0}};
static const struct souk_command app_cmds[] = {
    {.name = "buy",
     .description = "Buy shares",
     .options = buy_opts,
     .handler = noop,
     .autocomplete = noop},
    {.name = "setup",
     .description = "Set up",
     .subcommands = setup_subs,
     .flags = SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD},
    {.name = "admin",
     .description = "Owners only",
     .handler = noop,
     .flags = SOUK_CMD_OWNER_ONLY | SOUK_CMD_HIDDEN},
    {.name = "ping", .description = "Pong", .handler = noop},
    {0}};

static int find_named(doc_t *d, int arr, const char *name) {
  for (size_t i = 0; i < souk_json_count(&d->j, arr); i++) {
    int t = souk_json_at(&d->j, arr, i);
    if (souk_json_streq(&d->j, souk_json_get(&d->j, t, "name"), name)) return t;
  }
  fail_msg("no \"%s\"", name);
  return -1;
}

static void commands_doc(doc_t *d) {
  memset(d, 0, sizeof *d);
  souk__dmsg_commands(&d->b);
  doc_parse(d);
}

static void test_application_commands(void **state) {
  (void)state;
  doc_t d;
  commands_doc(&d);
  assert_int_equal(souk_json_type(&d.j, 0), SOUK_JSON_ARRAY);
  assert_int_equal(souk_json_count(&d.j, 0), 0);
  doc_free(&d);

  assert_int_equal(souk__cmd_register(app_cmds, "test"), 0);
  commands_doc(&d);
  assert_int_equal(souk_json_count(&d.j, 0), 4);

  int buy = find_named(&d, 0, "buy");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, buy, "type")), 1);
  assert_true(souk_json_streq(&d.j, souk_json_get(&d.j, buy, "description"), "Buy shares"));
  assert_int_equal(souk_json_get(&d.j, buy, "default_member_permissions"), -1);
  int ctxs = souk_json_get(&d.j, buy, "contexts");
  assert_int_equal(souk_json_count(&d.j, ctxs), 2);
  assert_int_equal(int_of(&d, souk_json_at(&d.j, ctxs, 0)), 0);
  assert_int_equal(int_of(&d, souk_json_at(&d.j, ctxs, 1)), 1);
  int opts = souk_json_get(&d.j, buy, "options");
  assert_int_equal(souk_json_count(&d.j, opts), 9);
  int sym = find_named(&d, opts, "symbol");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, sym, "type")), 3);
  bool bv = false;
  assert_int_equal(souk_json_bool(&d.j, souk_json_get(&d.j, sym, "required"), &bv), 0);
  assert_true(bv);
  assert_int_equal(souk_json_bool(&d.j, souk_json_get(&d.j, sym, "autocomplete"), &bv), 0);
  assert_true(bv);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, sym, "min_length")), 1);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, sym, "max_length")), 10);
  int amt = find_named(&d, opts, "amount");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, amt, "type")), 4);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, amt, "min_value")), 1);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, amt, "max_value")), 1000000);
  int lim = find_named(&d, opts, "limit");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, lim, "type")), 10);
  double dv = 0;
  assert_int_equal(souk_json_double(&d.j, souk_json_get(&d.j, lim, "min_value"), &dv), 0);
  assert_true(dv > 0.00999 && dv < 0.01001);
  assert_int_equal(souk_json_double(&d.j, souk_json_get(&d.j, lim, "max_value"), &dv), 0);
  assert_true(dv > 100000.49 && dv < 100000.51);
  assert_int_equal(souk_json_get(&d.j, lim, "required"), -1);
  int side = find_named(&d, opts, "side");
  int sc = souk_json_get(&d.j, side, "choices");
  assert_int_equal(souk_json_count(&d.j, sc), 2);
  int t = souk_json_get(&d.j, souk_json_at(&d.j, sc, 1), "value");
  assert_int_equal(souk_json_type(&d.j, t), SOUK_JSON_STRING);
  assert_true(souk_json_streq(&d.j, t, "sell"));
  int nopt = find_named(&d, opts, "n");
  int nc = souk_json_get(&d.j, nopt, "choices");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, souk_json_at(&d.j, nc, 1), "value")), 2);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, find_named(&d, opts, "who"), "type")), 6);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, find_named(&d, opts, "where"), "type")), 7);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, find_named(&d, opts, "role"), "type")), 8);
  assert_int_equal(int_of(&d, souk_json_get(&d.j, find_named(&d, opts, "yes"), "type")), 5);
  /* option order is the table's: required ones first */
  assert_true(
      souk_json_streq(&d.j, souk_json_get(&d.j, souk_json_at(&d.j, opts, 0), "name"), "symbol"));

  int setup_c = find_named(&d, 0, "setup");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, setup_c, "default_member_permissions")),
                   (int64_t)SOUK_PERM_MANAGE_GUILD);
  ctxs = souk_json_get(&d.j, setup_c, "contexts");
  assert_int_equal(souk_json_count(&d.j, ctxs), 1); /* guild only */
  assert_int_equal(int_of(&d, souk_json_at(&d.j, ctxs, 0)), 0);
  int so = souk_json_get(&d.j, setup_c, "options");
  int grp = find_named(&d, so, "prefix");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, grp, "type")), 2); /* SUB_COMMAND_GROUP */
  int show = find_named(&d, so, "show");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, show, "type")), 1); /* SUB_COMMAND */
  assert_int_equal(souk_json_get(&d.j, show, "options"), -1);
  int gopts = souk_json_get(&d.j, grp, "options");
  int set = find_named(&d, gopts, "set");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, set, "type")), 1);
  int setv = find_named(&d, souk_json_get(&d.j, set, "options"), "value");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, setv, "type")), 3);

  /* Owner-only: hidden from everyone but administrators by default. */
  int admin = find_named(&d, 0, "admin");
  assert_int_equal(int_of(&d, souk_json_get(&d.j, admin, "default_member_permissions")),
                   (int64_t)SOUK_PERM_ADMINISTRATOR);
  int ping = find_named(&d, 0, "ping");
  assert_int_equal(souk_json_get(&d.j, ping, "options"), -1);
  doc_free(&d);
}

/* ---- Discord's OpenAPI schema ------------------------------------------------------------ */

/* A small validator in the spirit of tests/fakes/fake_discord.py's
 * SpecValidator (which needs aiohttp): each case is [method, path, body]. */
static const char validator_py[] =
    "import json, re, sys, warnings\n"
    "warnings.filterwarnings('ignore')\n"
    "try:\n"
    "    from jsonschema import Draft202012Validator, RefResolver\n"
    "except ImportError:\n"
    "    sys.exit(77)\n"
    "spec = json.load(open(sys.argv[1], 'rb'))\n"
    "sf = spec['components']['schemas'].get('SnowflakeType')\n"
    "if sf is not None:\n"
    "    spec['components']['schemas']['SnowflakeType'] = {'anyOf': [sf, {'type': 'integer', "
    "'minimum': 0}]}\n"
    "res = RefResolver.from_schema(spec)\n"
    "tpls = []\n"
    "for tpl, item in spec['paths'].items():\n"
    "    parts = re.split(r'(\\{[^}]+\\})', tpl)\n"
    "    rx = ''.join('[^/]+' if p.startswith('{') else re.escape(p) for p in parts)\n"
    "    tpls.append((sum(p.startswith('{') for p in parts), tpl, re.compile('^' + rx + '$'), "
    "item))\n"
    "tpls.sort(key=lambda x: x[0])\n"
    "bad = 0\n"
    "for method, path, body in json.load(open(sys.argv[2])):\n"
    "    op = next((it[method.lower()] for _, t, rx, it in tpls if rx.match(path) and "
    "method.lower() in it), None)\n"
    "    if op is None:\n"
    "        print('no route', method, path); bad += 1; continue\n"
    "    schema = op['requestBody']['content']['application/json']['schema']\n"
    "    for e in Draft202012Validator(schema, resolver=res).iter_errors(body):\n"
    "        leaves = []\n"
    "        def walk(x):\n"
    "            if x.context:\n"
    "                for c in x.context: walk(c)\n"
    "            else: leaves.append(x)\n"
    "        walk(e)\n"
    "        best = max(leaves, key=lambda x: len(x.absolute_path))\n"
    "        print(method, path, list(best.absolute_path), best.message[:300]); bad += 1\n"
    "sys.exit(1 if bad else 0)\n";

static void add_case(souk_buf_t *all, bool *first, const char *method, const char *path,
                     const souk_buf_t *body) {
  souk_buf_puts(all, *first ? "[" : ",");
  *first = false;
  souk_buf_printf(all, "[\"%s\",\"%s\",", method, path);
  souk_buf_append(all, body->data, body->len);
  souk_buf_puts(all, "]");
}

/* A message body wrapped as an interaction response of type t (t 0: the
 * bare message). */
static void msg_body(souk_buf_t *b, int type, const souk_msg_t *m, bool replace, unsigned flags) {
  souk_buf_reset(b);
  souk_jw_t w;
  souk_jw_init(&w, b);
  souk_jw_obj(&w);
  if (type) {
    souk_jw_key(&w, "type");
    souk_jw_i64(&w, type);
    souk_jw_key(&w, "data");
    souk_jw_obj(&w);
  }
  const char *c = m->content ? m->content : "";
  souk__dmsg_write(&w, m, c, strlen(c), true, replace, flags);
  if (type) souk_jw_end(&w);
  souk_jw_end(&w);
}

static void test_openapi_schema(void **state) {
  (void)state;
  if (system("command -v python3 >/dev/null 2>&1") != 0) {
    print_message("python3 is missing: the OpenAPI check is skipped\n");
    skip();
  }
  assert_int_equal(souk__cmd_register(app_cmds, "test"), 0);
  souk_buf_t all = {0}, b = {0};
  bool first = true;
  souk__dmsg_commands(&b);
  add_case(&all, &first, "PUT", "/applications/1/commands", &b);
  add_case(&all, &first, "PUT", "/applications/1/guilds/2/commands", &b);

  char *big = rep("\xC3\xA9", 5000);
  souk_embed_field_t f[] = {{"Price", "12.50", true}, {big, big, false}};
  souk_embed_t e[] = {{.title = big,
                       .description = big,
                       .url = "https://example.com",
                       .color = 0xff8800,
                       .footer = "footer",
                       .fields = f,
                       .nfields = 2},
                      {.title = "two"}};
  static const souk_select_option_t opts[] = {{"One", "1", "first"}, {"Two", "2", NULL}};
  souk_component_t comps[] = {
      {.custom_id = "a:1", .label = "Prev", .style = SOUK_BUTTON_SECONDARY},
      {.custom_id = "a:2", .label = big, .style = SOUK_BUTTON_DANGER, .disabled = true},
      {.custom_id = "a:3", .label = "Pick", .options = opts, .noptions = 2},
  };
  souk_msg_t m = {
      .content = "hello", .embeds = e, .nembeds = 2, .components = comps, .ncomponents = 3};
  msg_body(&b, 0, &m, false, 0);
  add_case(&all, &first, "POST", "/channels/1/messages", &b);
  msg_body(&b, 4, &m, false, SOUK_DMSG_EPHEMERAL);
  add_case(&all, &first, "POST", "/interactions/1/tok/callback", &b);
  msg_body(&b, 7, &m, true, 0);
  add_case(&all, &first, "POST", "/interactions/1/tok/callback", &b);
  souk_msg_t plain = {.content = "edited"};
  msg_body(&b, 0, &plain, true, 0);
  add_case(&all, &first, "PATCH", "/webhooks/1/tok/messages/@original", &b);
  msg_body(&b, 0, &m, false, SOUK_DMSG_EPHEMERAL);
  add_case(&all, &first, "POST", "/webhooks/1/tok", &b);

  /* autocomplete (8) and modal (9) responses */
  souk_buf_reset(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "type");
  souk_jw_i64(&w, 8);
  souk_jw_key(&w, "data");
  souk_jw_obj(&w);
  souk_cmd_choice_t ch[] = {{"one", "1"}, {"two", "2"}};
  souk__dmsg_choices(&w, ch, 2, SOUK_OPT_INTEGER);
  souk_jw_end(&w);
  souk_jw_end(&w);
  add_case(&all, &first, "POST", "/interactions/1/tok/callback", &b);
  souk_buf_reset(&b);
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "type");
  souk_jw_i64(&w, 9);
  souk_jw_key(&w, "data");
  souk_jw_obj(&w);
  souk_modal_field_t mf[] = {{.custom_id = "name",
                              .label = "Name",
                              .required = true,
                              .min_length = 1,
                              .max_length = 20,
                              .placeholder = "p",
                              .value = "v"},
                             {.custom_id = "about", .label = big, .paragraph = true}};
  souk_modal_t modal = {.custom_id = "f:1", .title = big, .fields = mf, .nfields = 2};
  souk__dmsg_modal(&w, &modal);
  souk_jw_end(&w);
  souk_jw_end(&w);
  add_case(&all, &first, "POST", "/interactions/1/tok/callback", &b);
  souk_buf_puts(&all, "]");

  char dir[] = "/tmp/souk-dmsg-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char py[96], cases[96], cmd[512];
  snprintf(py, sizeof py, "%s/check.py", dir);
  snprintf(cases, sizeof cases, "%s/cases.json", dir);
  FILE *fp = fopen(py, "w");
  assert_non_null(fp);
  fputs(validator_py, fp);
  fclose(fp);
  fp = fopen(cases, "w");
  assert_non_null(fp);
  fwrite(all.data, 1, all.len, fp);
  fclose(fp);
  snprintf(cmd, sizeof cmd, "python3 %s %s/discord/openapi.json %s", py, SOUK_TEST_FIXTURES, cases);
  int rc = system(cmd);
  int st = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) print_message("could not remove %s\n", dir);
  souk_buf_free(&all);
  souk_buf_free(&b);
  souk_free(big);
  if (st == 77) {
    print_message("python3-jsonschema is missing: the OpenAPI check is skipped\n");
    skip();
  }
  assert_int_equal(st, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_content_and_mentions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_embed_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_embed_total_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_embed_budget_field_placeholder, setup, teardown),
      cmocka_unit_test_setup_teardown(test_components, setup, teardown),
      cmocka_unit_test_setup_teardown(test_modal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_choices, setup, teardown),
      cmocka_unit_test_setup_teardown(test_choices_raw_numbers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_application_commands, setup, teardown),
      cmocka_unit_test_setup_teardown(test_openapi_schema, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
