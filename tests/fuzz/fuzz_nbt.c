/* libFuzzer target for SkyBlock item decoding: base64 -> gzip -> NBT ->
 * item key, and raw NBT.
 *
 * The first byte picks the path, the rest is the input:
 *   0  raw NBT: the structure check, the item walk and the JSON writer, with
 *      their invariants cross-checked (a document the JSON writer accepts
 *      passes the check and reads back as JSON; the walk accepts nothing
 *      the check refuses);
 *   1  the same NBT gzipped and base64-encoded here (zlib, a plain
 *      encoder), through the whole pipeline: the answer must be the raw
 *      path's, item for item;
 *   2  the input as item_bytes text: base64 and gzip refusals, bombs, and
 *      whatever a mutation of a real item's text reaches; decoded with
 *      souk's inflater (the default) and again with zlib's, which must
 *      agree on the verdict and the item (tests/fuzz/fuzz_inflate.c
 *      compares the inflaters alone).
 * Any inconsistency aborts.
 *
 * Run: fuzz_nbt tests/fuzz/corpus/nbt
 * The suite replays the saved corpus without libFuzzer (replay.c). */
#include "../../src/modules/skyblock/item.h"
#include "../../src/modules/skyblock/nbt.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHECK(c)                                                                                   \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "fuzz_nbt: check failed: %s (line %d)\n", #c, __LINE__);                     \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* Reused across inputs, as a pool thread reuses its decoder. */
static sb_decoder_t *g_dec, *g_zdec;
static souk_buf_t g_json, g_json2, g_wrap, g_gz;
static souk_json_t g_doc;

static void wrap(const uint8_t *p, size_t n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  z_stream z = {0};
  CHECK(deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  size_t cap = deflateBound(&z, (uLong)n) + 32;
  souk_buf_reset(&g_gz);
  souk_buf_reserve(&g_gz, cap);
  z.next_in = (Bytef *)p;
  z.avail_in = (uInt)n;
  z.next_out = (Bytef *)g_gz.data;
  z.avail_out = (uInt)cap;
  CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
  g_gz.len = z.total_out;
  deflateEnd(&z);
  souk_buf_reset(&g_wrap);
  const unsigned char *s = (const unsigned char *)g_gz.data;
  for (size_t i = 0; i < g_gz.len; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < g_gz.len ? (uint32_t)s[i + 1] << 8 : 0) |
                 (i + 2 < g_gz.len ? s[i + 2] : 0);
    char q[4] = {a[v >> 18], a[v >> 12 & 63], i + 1 < g_gz.len ? a[v >> 6 & 63] : '=',
                 i + 2 < g_gz.len ? a[v & 63] : '='};
    souk_buf_append(&g_wrap, q, 4);
  }
}

/* The item's fields must be terminated strings, the count at least 1. */
static void check_item(const sb_item_t *it) {
  CHECK(memchr(it->id, 0, sizeof it->id) && it->id[0]);
  CHECK(memchr(it->key, 0, sizeof it->key) && it->key[0]);
  CHECK(memchr(it->attrs, 0, sizeof it->attrs));
  CHECK(memchr(it->name, 0, sizeof it->name));
  CHECK(it->count >= 1);
  CHECK(it->kind != SB_KIND_PET || (it->pet_level >= 1 && it->pet_level <= 200) ||
        strcmp(it->key, "PET:UNKNOWN") == 0);
  /* Key components are sanitised: no byte outside ASCII. */
  for (const char *p = it->key; *p; p++)
    CHECK((unsigned char)*p < 0x80);
  for (const char *p = it->attrs; *p; p++)
    CHECK((unsigned char)*p < 0x80);
}

static void raw_nbt(const uint8_t *p, size_t n, int *item_rc, sb_item_t *item) {
  int check = sb_nbt_check(p, n);
  souk_buf_reset(&g_json);
  int json = sb_nbt_json(p, n, &g_json);
  *item_rc = sb_item_from_nbt(g_dec, p, n, item);
  if (json == 0) {
    CHECK(check == 0);
    /* The JSON writer writes JSON. */
    g_doc.max_depth = 2 * SB_NBT_MAX_DEPTH;
    CHECK(souk_json_parse(&g_doc, g_json.data, g_json.len) == 0);
  }
  if (check != 0) CHECK(*item_rc != 0);
  if (*item_rc == 0) check_item(item);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_dec) {
    g_dec = sb_decoder_new();
    g_zdec = sb_decoder_new();
    sb_decoder_set_inflater(g_zdec, SB_INFLATE_ZLIB);
  }
  if (size < 1) return 0;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
  case 0: {
    int rc;
    sb_item_t it;
    raw_nbt(p, n, &rc, &it);
    break;
  }
  case 1: {
    int rc;
    sb_item_t direct, piped;
    raw_nbt(p, n, &rc, &direct);
    wrap(p, n);
    int prc = sb_item_decode(g_dec, g_wrap.data, g_wrap.len, &piped);
    if (n > SB_ITEM_MAX_NBT) {
      CHECK(prc == SOUK_ETOOBIG);
      break;
    }
    CHECK(prc == rc);
    if (rc == 0) CHECK(memcmp(&direct, &piped, sizeof direct) == 0);
    souk_buf_reset(&g_json2);
    int jrc = sb_nbt_to_json(g_dec, g_wrap.data, g_wrap.len, &g_json2);
    souk_buf_reset(&g_json);
    CHECK(jrc == sb_nbt_json(p, n, &g_json));
    if (jrc == 0)
      CHECK(g_json.len == g_json2.len && memcmp(g_json.data, g_json2.data, g_json.len) == 0);
    break;
  }
  default: {
    sb_item_t it, zit;
    int rc = sb_item_decode(g_dec, (const char *)p, n, &it);
    if (rc == 0) check_item(&it);
    CHECK(sb_item_decode(g_zdec, (const char *)p, n, &zit) == rc);
    if (rc == 0) CHECK(memcmp(&it, &zit, sizeof it) == 0);
    souk_buf_reset(&g_json);
    sb_nbt_to_json(g_dec, (const char *)p, n, &g_json);
    break;
  }
  }
  return 0;
}
