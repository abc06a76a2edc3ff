/* SkyBlock item decoding: base64, gunzip, NBT (all 13 tag types, modified
 * UTF-8, hostile input), the oracle of 120 real sales decoded by another
 * implementation, and the item key on real auctions. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "modules/skyblock/b64.h"
#include "modules/skyblock/item.h"
#include "modules/skyblock/nbt.h"
#include "sbtest.h"
#include "souk/err.h"
#include "souk/json.h"

#include <math.h>

#define FIX SOUK_TEST_FIXTURES "/hypixel/"

/* ---- base64 ------------------------------------------------------------ */

static int b64(const char *s, char *out, size_t *n) {
  uint8_t buf[256];
  int rc = sb_b64_decode(s, strlen(s), buf, n);
  if (rc == 0) memcpy(out, buf, *n), out[*n] = '\0';
  return rc;
}

static void test_base64(void **state) {
  char out[256];
  size_t n;
  /* RFC 4648 section 10. */
  const char *vec[][2] = {{"", ""},
                          {"Zg==", "f"},
                          {"Zm8=", "fo"},
                          {"Zm9v", "foo"},
                          {"Zm9vYg==", "foob"},
                          {"Zm9vYmE=", "fooba"},
                          {"Zm9vYmFy", "foobar"}};
  for (size_t i = 0; i < sizeof vec / sizeof *vec; i++) {
    assert_int_equal(b64(vec[i][0], out, &n), 0);
    assert_int_equal(n, strlen(vec[i][1]));
    assert_string_equal(out, vec[i][1]);
  }
  /* Strict: no missing padding, no stray '=', no whitespace, no URL-safe
   * alphabet, no non-zero bits under the padding. */
  const char *bad[] = {"Zg",   "Zg=",  "Z===", "====", "Zg==Zg==", "Zm9v\n",  " Zm9v",  "Zm-v",
                       "Zm_v", "Zh==", "Zm9=", "Zm=v", "=m9v",     "Zm9vYg=", "Zm9\x80"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(b64(bad[i], out, &n), SOUK_EPARSE);

  /* Every length 0..200 of pseudo-random bytes round-trips through an
   * independent encoder, exercising the two-group loop and its tail. */
  uint8_t raw[200], dec[300];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof raw; i++)
    raw[i] = (uint8_t)((x = x * 1103515245 + 12345) >> 16);
  souk_buf_t enc = {0};
  for (size_t len = 0; len <= sizeof raw; len++) {
    sbt_b64(raw, len, &enc);
    assert_true(sb_b64_out_cap(enc.len) <= sizeof dec);
    assert_int_equal(sb_b64_decode(enc.data, enc.len, dec, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(dec, raw, len);
    /* Any one character replaced by one outside the alphabet is refused. */
    if (len && len % 7 == 0) {
      for (size_t p = 0; p < enc.len; p++) {
        char keep = enc.data[p];
        enc.data[p] = '*';
        assert_int_equal(sb_b64_decode(enc.data, enc.len, dec, &n), SOUK_EPARSE);
        enc.data[p] = keep;
      }
    }
  }
  souk_buf_free(&enc);
}

/* ---- modified UTF-8 ---------------------------------------------------- */

static int mutf8(const char *in, size_t n, char *out) {
  int rc = sb_mutf8_to_utf8(in, n, out, n);
  if (rc >= 0) out[rc] = '\0';
  return rc;
}

static void test_mutf8(void **state) {
  char out[64];
  /* NUL as C0 80. */
  assert_int_equal(mutf8("a\xc0\x80z", 4, out), 3);
  assert_memory_equal(out, "a\0z", 3);
  /* U+1F600 as the surrogate pair D83D DE00, each half 3 bytes. */
  assert_int_equal(mutf8("\xed\xa0\xbd\xed\xb8\x80", 6, out), 4);
  assert_string_equal(out, "\xf0\x9f\x98\x80");
  /* Lone surrogates (high, low, high then a non-surrogate) become U+FFFD. */
  assert_int_equal(mutf8("\xed\xa0\xbd", 3, out), 3);
  assert_string_equal(out, "\xef\xbf\xbd");
  assert_int_equal(mutf8("\xed\xb8\x80", 3, out), 3);
  assert_string_equal(out, "\xef\xbf\xbd");
  assert_int_equal(mutf8("\xed\xa0\xbdx", 4, out), 4);
  assert_string_equal(out, "\xef\xbf\xbdx");
  /* § (C2 A7) and a 3-byte character pass through. */
  assert_int_equal(mutf8("\xc2\xa7"
                         "6\xe2\x9c\xaa",
                         6, out),
                   6);
  assert_string_equal(out, "\xc2\xa7"
                           "6\xe2\x9c\xaa");
  /* An overlong form, which Java accepts, is re-encoded shortest. */
  assert_int_equal(mutf8("\xc1\x81", 2, out), 1);
  assert_string_equal(out, "A");
  /* What Java's readUTF refuses: 4-byte forms, stray continuation bytes,
   * truncated sequences. */
  assert_int_equal(mutf8("\xf0\x9f\x98\x80", 4, out), SOUK_EPARSE);
  assert_int_equal(mutf8("\x80", 1, out), SOUK_EPARSE);
  assert_int_equal(mutf8("\xc2", 1, out), SOUK_EPARSE);
  assert_int_equal(mutf8("\xe2\x9c", 2, out), SOUK_EPARSE);
  assert_int_equal(mutf8("\xc2\x41", 2, out), SOUK_EPARSE);
  /* The output never outgrows the input, but a smaller buffer is refused. */
  assert_int_equal(sb_mutf8_to_utf8("abc", 3, out, 2), SOUK_ETOOBIG);
}

/* ---- NBT structure ----------------------------------------------------- */

/* One document with every tag type, built by hand. */
static void all_types_doc(souk_buf_t *b) {
  nb_head(b, 10, "root name");
  nb_head(b, 1, "b");
  nb_u8(b, 0xFE); /* -2 */
  nb_head(b, 2, "s");
  nb_u16(b, 0x8000); /* -32768 */
  nb_head(b, 3, "i");
  nb_u32(b, 0x7FFFFFFF);
  nb_head(b, 4, "l");
  nb_u64(b, 0x8000000000000000ull); /* INT64_MIN */
  nb_head(b, 5, "f");
  nb_u32(b, 0x3FC00000); /* 1.5f */
  nb_head(b, 6, "d");
  nb_u64(b, 0x3FB999999999999Aull); /* 0.1 */
  nb_head(b, 7, "ba");
  nb_u32(b, 3);
  nb_u8(b, 1), nb_u8(b, 0xFF), nb_u8(b, 0);
  nb_head(b, 8, "str");
  nb_strn(b, "q\"\\\xc0\x80\xed\xa0\xbd\xed\xb8\x80", 11);
  nb_head(b, 9, "list");
  nb_u8(b, 9); /* a list of lists */
  nb_u32(b, 2);
  nb_u8(b, 3), nb_u32(b, 1), nb_u32(b, 0xFFFFFFFF); /* [-1] */
  nb_u8(b, 0), nb_u32(b, 0);                        /* [] (list of End) */
  nb_head(b, 10, "comp");
  nb_head(b, 8, "k");
  nb_str(b, "v");
  nb_end(b);
  nb_head(b, 11, "ia");
  nb_u32(b, 2);
  nb_u32(b, 1), nb_u32(b, 0x80000000);
  nb_head(b, 12, "la");
  nb_u32(b, 1);
  nb_u64(b, 0x7FFFFFFFFFFFFFFFull);
  nb_head(b, 6, "nan");
  nb_u64(b, 0x7FF8000000000000ull);
  nb_end(b);
}

static void test_nbt_all_types(void **state) {
  souk_buf_t b = {0}, out = {0};
  all_types_doc(&b);
  assert_int_equal(sb_nbt_check((uint8_t *)b.data, b.len), 0);
  assert_int_equal(sb_nbt_json((uint8_t *)b.data, b.len, &out), 0);
  assert_string_equal(out.data,
                      "{\"b\":-2,\"s\":-32768,\"i\":2147483647,\"l\":-9223372036854775808,"
                      "\"f\":1.5,\"d\":0.1,\"ba\":[1,-1,0],"
                      "\"str\":\"q\\\"\\\\\\u0000\xf0\x9f\x98\x80\","
                      "\"list\":[[-1],[]],\"comp\":{\"k\":\"v\"},"
                      "\"ia\":[1,-2147483648],\"la\":[9223372036854775807],\"nan\":null}");
  souk_buf_free(&b);
  souk_buf_free(&out);
}

/* Nested lists: depth levels of "list of list", the innermost empty. */
static void nested_lists(souk_buf_t *b, int depth) {
  souk_buf_reset(b);
  nb_head(b, 10, "");
  nb_head(b, 9, "x");
  for (int i = 1; i < depth; i++)
    nb_u8(b, 9), nb_u32(b, 1);
  nb_u8(b, 0), nb_u32(b, 0);
  nb_end(b);
}

static void test_nbt_hostile(void **state) {
  souk_buf_t b = {0}, out = {0};
  all_types_doc(&b);
  /* Every truncation is an error, never a read past the end (ASan). */
  for (size_t n = 0; n < b.len; n++) {
    assert_int_not_equal(sb_nbt_check((uint8_t *)b.data, n), 0);
    souk_buf_reset(&out);
    assert_int_not_equal(sb_nbt_json((uint8_t *)b.data, n, &out), 0);
  }
  /* Trailing bytes after the root. */
  souk_buf_putc(&b, 0);
  assert_int_equal(sb_nbt_check((uint8_t *)b.data, b.len), SOUK_EPARSE);

  /* The depth limit: the root compound is depth 1, each list one more. */
  nested_lists(&b, SB_NBT_MAX_DEPTH - 1);
  assert_int_equal(sb_nbt_check((uint8_t *)b.data, b.len), 0);
  souk_buf_reset(&out);
  assert_int_equal(sb_nbt_json((uint8_t *)b.data, b.len, &out), 0);
  nested_lists(&b, SB_NBT_MAX_DEPTH);
  assert_int_equal(sb_nbt_check((uint8_t *)b.data, b.len), SOUK_ETOOBIG);
  souk_buf_reset(&out);
  assert_int_equal(sb_nbt_json((uint8_t *)b.data, b.len, &out), SOUK_ETOOBIG);
  nested_lists(&b, 5000);
  assert_int_equal(sb_nbt_check((uint8_t *)b.data, b.len), SOUK_ETOOBIG);

  /* Lists and arrays whose counts cannot fit, are negative, or are lists of
   * End with elements: refused before any loop runs. */
  struct {
    uint8_t et;
    uint32_t n;
  } lists[] = {{10, 0x7FFFFFFF}, {3, 1000}, {1, 0x80000000}, {0, 1}, {13, 0}, {9, 0x7FFFFFFF}};
  for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
    souk_buf_reset(&b);
    nb_head(&b, 10, "");
    nb_head(&b, 9, "x");
    nb_u8(&b, lists[i].et);
    nb_u32(&b, lists[i].n);
    nb_end(&b);
    assert_int_equal(sb_nbt_check((uint8_t *)b.data, b.len), SOUK_EPARSE);
  }
  for (unsigned t = 7; t <= 12; t += (t == 7 ? 4 : 1)) {
    souk_buf_reset(&b);
    nb_head(&b, 10, "");
    nb_head(&b, t, "a");
    nb_u32(&b, 0xFFFFFFFF); /* -1 */
    nb_end(&b);
    assert_int_equal(sb_nbt_check((uint8_t *)b.data, b.len), SOUK_EPARSE);
  }
  /* Unknown tag type; root not a compound; a string running past the end. */
  const char *docs[][2] = {{"\x0a\x00\x00\x0d\x00\x01x\x00", "8"},
                           {"\x08\x00\x00\x00\x01x", "6"},
                           {"\x0a\x00\x00\x08\x00\x01x\x00\x09"
                            "ab\x00",
                            "12"}};
  for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
    assert_int_equal(sb_nbt_check((const uint8_t *)docs[i][0], (size_t)atoi(docs[i][1])),
                     SOUK_EPARSE);
  souk_buf_free(&b);
  souk_buf_free(&out);
}

/* ---- semantic JSON comparison for the oracle --------------------------- */

static bool json_equal(const souk_json_t *a, int ta, const souk_json_t *b, int tb,
                       souk_buf_t *path);

static bool str_equal(const souk_json_t *a, int ta, const souk_json_t *b, int tb) {
  size_t na, nb;
  souk_json_raw(a, ta, &na);
  souk_json_raw(b, tb, &nb);
  char *x = souk_malloc(na + 1), *y = souk_malloc(nb + 1);
  int la = souk_json_str(a, ta, x, na + 1), lb = souk_json_str(b, tb, y, nb + 1);
  bool eq = la >= 0 && la == lb && memcmp(x, y, (size_t)la) == 0;
  souk_free(x);
  souk_free(y);
  return eq;
}

static bool json_equal(const souk_json_t *a, int ta, const souk_json_t *b, int tb,
                       souk_buf_t *path) {
  souk_json_type_t t = souk_json_type(a, ta);
  if (t != souk_json_type(b, tb)) return false;
  switch (t) {
  case SOUK_JSON_NUMBER: {
    int64_t x, y;
    if (souk_json_i64(a, ta, &x) == 0 && souk_json_i64(b, tb, &y) == 0) return x == y;
    double dx, dy;
    return souk_json_double(a, ta, &dx) == 0 && souk_json_double(b, tb, &dy) == 0 && dx == dy;
  }
  case SOUK_JSON_STRING:
    return str_equal(a, ta, b, tb);
  case SOUK_JSON_ARRAY: {
    size_t n = souk_json_count(a, ta);
    if (n != souk_json_count(b, tb)) return false;
    for (size_t i = 0; i < n; i++)
      if (!json_equal(a, souk_json_at(a, ta, i), b, souk_json_at(b, tb, i), path)) {
        souk_buf_printf(path, "[%zu]<-", i);
        return false;
      }
    return true;
  }
  case SOUK_JSON_OBJECT: {
    if (souk_json_count(a, ta) != souk_json_count(b, tb)) return false;
    for (int k = souk_json_first(a, ta); k >= 0 && k < (int)a->toks[ta].next;
         k = souk_json_skip(a, k + 1)) {
      char key[256];
      int kl = souk_json_str(a, k, key, sizeof key);
      assert_true(kl >= 0);
      int vb = souk_json_getn(b, tb, key, (size_t)kl);
      if (vb < 0 || !json_equal(a, k + 1, b, vb, path)) {
        souk_buf_printf(path, ".%s<-", key);
        return false;
      }
    }
    return true;
  }
  default:
    return true; /* null, true, false: the type says it all */
  }
}

/* The 120 sales of auctions_ended, decoded by the Python `NBT` package (the
 * fixture's SOURCES.md row): our JSON must say the same, value by value. */
static void test_oracle(void **state) {
  size_t na, no;
  char *auctions = sbt_read_file(FIX "auctions_ended-2025-08-09.auctions.json", &na);
  char *oracle = sbt_read_file(FIX "auctions_ended-2025-08-09.decoded-nbt.json", &no);
  souk_json_t ja = {0}, jo = {0}, jm = {0};
  assert_int_equal(souk_json_parse(&ja, auctions, na), 0);
  assert_int_equal(souk_json_parse(&jo, oracle, no), 0);
  assert_int_equal(souk_json_count(&ja, 0), 120);
  assert_int_equal(souk_json_count(&jo, 0), 120);
  sb_decoder_t *d = sb_decoder_new();
  souk_buf_t mine = {0}, path = {0};
  size_t matched = 0;
  for (size_t i = 0; i < 120; i++) {
    int a = souk_json_at(&ja, 0, i);
    char id[64];
    assert_true(souk_json_str(&ja, souk_json_get(&ja, a, "auction_id"), id, sizeof id) > 0);
    size_t bl;
    const char *b64 = souk_json_raw(&ja, souk_json_get(&ja, a, "item_bytes"), &bl);
    souk_buf_reset(&mine);
    assert_int_equal(sb_nbt_to_json(d, b64, bl, &mine), 0);
    assert_int_equal(souk_json_parse(&jm, mine.data, mine.len), 0);
    int want = souk_json_get(&jo, 0, id);
    assert_true(want >= 0);
    souk_buf_reset(&path);
    if (!json_equal(&jm, 0, &jo, want, &path)) fail_msg("sale %s differs at %s", id, path.data);
    matched++;
    /* The item walk accepts every one of them too. */
    sb_item_t it;
    assert_int_equal(sb_item_decode(d, b64, bl, &it), 0);
  }
  assert_int_equal(matched, 120);
  sb_decoder_free(d);
  souk_json_free(&ja);
  souk_json_free(&jo);
  souk_json_free(&jm);
  souk_buf_free(&mine);
  souk_buf_free(&path);
  souk_free(auctions);
  souk_free(oracle);
}

/* ---- item keys on real auctions ---------------------------------------- */

/* Expected keys for the 25 auctions of the subset fixture, written from
 * reading each one's decoded NBT (ExtraAttributes, petInfo, Count) and the
 * rules at the top of item.h. */
static const struct {
  const char *uuid_prefix, *id, *key, *attrs;
  unsigned count;
  sb_rarity_t rarity;
  unsigned pet_level;
  const char *reforge;
} subset[] = {
    {"a6774985", "PET_SKIN_ENDERMAN_SLAYER", "PET_SKIN_ENDERMAN_SLAYER", "", 1, SB_RARITY_EPIC, 0,
     ""},
    {"6cd85a4b", "PET", "PET:MOLE:LEGENDARY:L1", "", 1, SB_RARITY_LEGENDARY, 1, ""},
    {"5efb7967", "SPIRIT_SWORD", "SPIRIT_SWORD", "", 1, SB_RARITY_EPIC, 0, ""},
    {"aaecf703", "OLD_DRAGON_CHESTPLATE", "OLD_DRAGON_CHESTPLATE", "", 1, SB_RARITY_LEGENDARY, 0,
     ""},
    /* protection 5 is below the notable level 7. */
    {"c3d88919", "TANK_MINER_BOOTS", "TANK_MINER_BOOTS", "", 1, SB_RARITY_RARE, 0, ""},
    {"980cbe3d", "PET", "PET:ENDER_DRAGON:LEGENDARY:L100", "held=DWARF_TURTLE_SHELMET", 1,
     SB_RARITY_LEGENDARY, 100, ""},
    {"21a57850", "ZOMBIE_LORD_HELMET", "ZOMBIE_LORD_HELMET", "", 1, SB_RARITY_EPIC, 0, "heavy"},
    {"9e96df58", "CRIMSON_BOOTS", "CRIMSON_BOOTS", "kuudra=life_regeneration4+mending5", 1,
     SB_RARITY_LEGENDARY, 0, ""},
    {"69974b17", "EMERALD_BLADE", "EMERALD_BLADE", "", 1, SB_RARITY_EPIC, 0, ""},
    {"b047fac9", "GOD_POTION_2", "GOD_POTION_2", "", 1, SB_RARITY_SPECIAL, 0, ""},
    {"3c8b7250", "NECROMANCER_LORD_LEGGINGS", "NECROMANCER_LORD_LEGGINGS", "stars=2", 1,
     SB_RARITY_LEGENDARY, 0, "necrotic"},
    /* 21 enchantments; only the ultimate one is notable (critical 6,
     * ender_slayer 5, giant_killer 5, first_strike 4 are below the
     * notable levels); "gems" is empty. */
    {"a33d2978", "BOUQUET_OF_LIES", "BOUQUET_OF_LIES", "stars=5,ench=ultimate_soul_eater2", 1,
     SB_RARITY_LEGENDARY, 0, "withered"},
    {"3eb181ff", "JUNGLE_BED", "JUNGLE_BED", "", 1, SB_RARITY_EPIC, 0, ""},
    {"ca3518a9", "POTION", "POTION:speed:7", "", 1, SB_RARITY_EPIC, 0, ""},
    {"8e6b91d5", "GREAT_SPOOK_SWORD", "GREAT_SPOOK_SWORD", "recomb", 1, SB_RARITY_DIVINE, 0, ""},
    {"9739274b", "PET_SKIN_GOLDEN_DRAGON_SWAP_PLUSHIE", "PET_SKIN_GOLDEN_DRAGON_SWAP_PLUSHIE", "",
     1, SB_RARITY_ULTIMATE, 0, ""},
    {"d26ef78b", "FANCY_BEACH_CHAIR", "FANCY_BEACH_CHAIR", "", 2, SB_RARITY_EPIC, 0, ""},
    /* Two filled gem slots (JASPER_0, COMBAT_0); COMBAT_0_gem names the
     * universal slot's gem and unlocked_slots lists slots. */
    {"9c4a7258", "POWER_WITHER_CHESTPLATE", "POWER_WITHER_CHESTPLATE",
     "stars=5,recomb,ench=ultimate_legion3,gems=2", 1, SB_RARITY_MYTHIC, 0, "ancient"},
    {"1a6b077d", "RUNE", "RUNE:WAKE:1", "", 1, SB_RARITY_LEGENDARY, 0, ""},
    {"39c8b85b", "ATTRIBUTE_SHARD", "ATTRIBUTE_SHARD:life_regeneration:1", "", 1, SB_RARITY_COMMON,
     0, ""},
    {"430a862a", "PET", "PET:LION:LEGENDARY:L50-79", "held=DWARF_TURTLE_SHELMET,candy", 1,
     SB_RARITY_LEGENDARY, 74, ""},
    {"ef02336f", "TOKEN_OF_THE_CENTURY", "TOKEN_OF_THE_CENTURY", "", 4, SB_RARITY_UNCOMMON, 0, ""},
    {"d8061738", "RUNE", "RUNE:LAVATEARS:1", "", 8, SB_RARITY_LEGENDARY, 0, ""},
    {"1689c99b", "PET", "PET:SHEEP:LEGENDARY:L100",
     "held=PET_ITEM_ALL_SKILLS_BOOST_COMMON,skin=SHEEP_CHROMA_WOOLY", 1, SB_RARITY_LEGENDARY, 100,
     ""},
    {"cb4b51ed", "RUNE", "RUNE:ICE:1", "", 51, SB_RARITY_RARE, 0, ""},
};

static void test_keys_subset(void **state) {
  size_t n;
  char *text = sbt_read_file(FIX "auctions-page0-2025-06-08.subset25.json", &n);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, n), 0);
  int arr = souk_json_get(&j, 0, "auctions");
  assert_int_equal(souk_json_count(&j, arr), 25);
  sb_decoder_t *d = sb_decoder_new();
  for (size_t i = 0; i < 25; i++) {
    int a = souk_json_at(&j, arr, i);
    char uuid[64];
    souk_json_str(&j, souk_json_get(&j, a, "uuid"), uuid, sizeof uuid);
    assert_memory_equal(uuid, subset[i].uuid_prefix, 8);
    sb_item_t it;
    assert_int_equal(sb_item_decode_json(d, &j, souk_json_get(&j, a, "item_bytes"), &it), 0);
    assert_string_equal(it.id, subset[i].id);
    assert_string_equal(it.key, subset[i].key);
    assert_string_equal(it.attrs, subset[i].attrs);
    assert_int_equal(it.count, subset[i].count);
    assert_int_equal(it.rarity, subset[i].rarity);
    assert_int_equal(it.pet_level, subset[i].pet_level);
    assert_string_equal(it.reforge, subset[i].reforge);
  }
  sb_decoder_free(d);
  souk_json_free(&j);
  souk_free(text);
}

/* The whole real page: every item decodes with both inflaters alike; its
 * rarity is the auction's own "tier" field, a pet's level the "[Lvl N]" in
 * its item_name, and the display name the item_name (both fields are
 * Hypixel's, not derived by us). */
static void test_keys_page(void **state) {
  size_t n;
  char *text = sbt_read_file(FIX "auctions-page0-2025-06-08.json.gz", &n);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, n), 0);
  int arr = souk_json_get(&j, 0, "auctions");
  assert_int_equal(souk_json_count(&j, arr), 1000);
  sb_decoder_t *d = sb_decoder_new(), *z = sb_decoder_new();
  sb_decoder_set_inflater(z, SB_INFLATE_ZLIB);
  size_t pets = 0, tier_boosted = 0, names = 0;
  for (size_t i = 0; i < 1000; i++) {
    int a = souk_json_at(&j, arr, i);
    sb_item_t it, iz;
    assert_int_equal(sb_item_decode_json(d, &j, souk_json_get(&j, a, "item_bytes"), &it), 0);
    assert_int_equal(sb_item_decode_json(z, &j, souk_json_get(&j, a, "item_bytes"), &iz), 0);
    assert_memory_equal(&it, &iz, sizeof it);
    char tier[32], name[128];
    souk_json_str(&j, souk_json_get(&j, a, "tier"), tier, sizeof tier);
    souk_json_str(&j, souk_json_get(&j, a, "item_name"), name, sizeof name);
    if (it.rarity != sb_rarity_parse(tier, strlen(tier)))
      fail_msg("auction %zu (%s): rarity %s, tier %s", i, it.id, sb_rarity_name(it.rarity), tier);
    if (strcmp(it.name, name) == 0) names++;
    assert_true(it.count >= 1);
    assert_true(it.key[0] != '\0');
    if (it.kind == SB_KIND_PET) {
      unsigned lvl;
      assert_int_equal(sscanf(name, "[Lvl %u]", &lvl), 1);
      assert_int_equal(it.pet_level, lvl);
      pets++;
      if (strcmp(it.pet_held, "PET_ITEM_TIER_BOOST") == 0) {
        tier_boosted++;
        assert_string_equal(it.key, "PET:ENDER_DRAGON:LEGENDARY:L100");
        assert_string_equal(it.attrs, "held=PET_ITEM_TIER_BOOST");
      }
    }
  }
  assert_int_equal(pets, 74);
  assert_int_equal(tier_boosted, 1);
  /* Names match item_name except where item_name has the stack's size. */
  assert_true(names >= 950);
  sb_decoder_free(d);
  sb_decoder_free(z);
  souk_json_free(&j);
  souk_free(text);
}

/* ---- keys of synthetic items (kinds the real fixtures lack) ------------ */

static void decode_doc(const souk_buf_t *nbt, sb_item_t *it) {
  souk_buf_t ib = {0};
  sbt_item_bytes(nbt, &ib);
  sb_decoder_t *d = sb_decoder_new();
  int rc = sb_item_decode(d, ib.data, ib.len, it);
  if (rc) fail_msg("decode: %s", souk_strerror(rc));
  sb_decoder_free(d);
  souk_buf_free(&ib);
}

static void enchants(souk_buf_t *b, const char *const *names, const int *levels, size_t n) {
  nb_head(b, 10, "enchantments");
  for (size_t i = 0; i < n; i++)
    nb_field_int(b, names[i], levels[i]);
  nb_end(b);
}

static void test_keys_synthetic(void **state) {
  souk_buf_t b = {0};
  sb_item_t it;

  /* One enchantment per book. */
  nb_item_begin(&b, 1,
                "\xc2\xa7"
                "fEnchanted Book",
                "\xc2\xa7"
                "6\xc2\xa7lLEGENDARY",
                "ENCHANTED_BOOK");
  enchants(&b, (const char *[]){"ultimate_wise"}, (int[]){5}, 1);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "ENCHANTED_BOOK:ultimate_wise:5");
  assert_string_equal(it.attrs, "");
  assert_int_equal(it.kind, SB_KIND_BOOK);
  assert_string_equal(it.name, "Enchanted Book");

  /* Several: a combined key, sorted by name whatever the NBT order. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "Book",
                "\xc2\xa7"
                "9\xc2\xa7lRARE",
                "ENCHANTED_BOOK");
  enchants(&b, (const char *[]){"smite", "bane_of_arthropods", "critical"}, (int[]){6, 5, 7}, 3);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "ENCHANTED_BOOK:bane_of_arthropods:5+critical:7+smite:6");
  assert_int_equal(it.rarity, SB_RARITY_RARE);

  /* Separators inside names cannot forge the key's structure. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "Book", "RARE", "ENCHANTED_BOOK");
  enchants(&b, (const char *[]){"a:1+b"}, (int[]){2}, 1);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "ENCHANTED_BOOK:a_1_b:2");

  /* Splash potions are a market of their own. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "Potion", "RARE", "POTION");
  nb_field_str(&b, "potion", "strength");
  nb_field_int(&b, "potion_level", 8);
  nb_field_str(&b, "potion_type", "SPLASH_POTION");
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "POTION:strength:8:splash");

  /* Attribute shards and runes with a level above 1. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 3, "Attribute Shard",
                "\xc2\xa7"
                "f\xc2\xa7lCOMMON",
                "ATTRIBUTE_SHARD");
  nb_head(&b, 10, "attributes");
  nb_field_int(&b, "mana_pool", 5);
  nb_end(&b);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "ATTRIBUTE_SHARD:mana_pool:5");
  assert_int_equal(it.count, 3);
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "Music Rune", "LEGENDARY", "UNIQUE_RUNE");
  nb_head(&b, 10, "runes");
  nb_field_int(&b, "MUSIC", 3);
  nb_end(&b);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "UNIQUE_RUNE:MUSIC:3");

  /* A weapon with everything the secondary key lists, in that order, and
   * enchantments just below the notable levels left out. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1,
                "\xc2\xa7"
                "dHeroic Hyperion \xc2\xa7"
                "6\xe2\x9c\xaa",
                "\xc2\xa7"
                "d\xc2\xa7l\xc2\xa7ka\xc2\xa7r \xc2\xa7"
                "d\xc2\xa7lMYTHIC DUNGEON SWORD",
                "HYPERION");
  nb_field_int(&b, "upgrade_level", 10);
  nb_field_int(&b, "dungeon_item_level", 5);
  nb_field_int(&b, "rarity_upgrades", 1);
  nb_field_str(&b, "modifier", "heroic");
  enchants(&b, (const char *[]){"ultimate_wise", "sharpness", "giant_killer", "critical"},
           (int[]){5, 7, 6, 7}, 4);
  nb_head(&b, 10, "gems");
  nb_field_str(&b, "SAPPHIRE_0", "PERFECT");
  nb_head(&b, 10, "COMBAT_0");
  nb_field_str(&b, "quality", "FLAWLESS");
  nb_end(&b);
  nb_field_str(&b, "COMBAT_0_gem", "JASPER");
  nb_head(&b, 9, "unlocked_slots");
  nb_u8(&b, 8), nb_u32(&b, 1), nb_str(&b, "COMBAT_0");
  nb_end(&b);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "HYPERION");
  assert_string_equal(it.attrs, "stars=10,recomb,ench=critical7+sharpness7+ultimate_wise5,gems=2");
  assert_string_equal(it.name, "Heroic Hyperion \xe2\x9c\xaa");
  assert_string_equal(it.reforge, "heroic");
  assert_int_equal(it.rarity, SB_RARITY_MYTHIC);
  assert_int_equal(it.n_enchants, 4);

  /* A field with an unexpected type is treated as absent, not an error. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "X", "EPIC", "ODD_ITEM");
  nb_field_str(&b, "upgrade_level", "five");
  nb_field_int(&b, "modifier", 3);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "ODD_ITEM");
  assert_int_equal(it.stars, 0);
  assert_string_equal(it.reforge, "");

  /* attrs that would overflow keep whole tokens and whole elements. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "X", "EPIC", "MANY");
  nb_field_int(&b, "upgrade_level", 5);
  const char *ult[] = {"ultimate_aaaaaaaaaaaaaaaaaaaa", "ultimate_bbbbbbbbbbbbbbbbbbbb",
                       "ultimate_cccccccccccccccccccc", "ultimate_dddddddddddddddddddd",
                       "ultimate_eeeeeeeeeeeeeeeeeeee"};
  enchants(&b, ult, (int[]){1, 2, 3, 4, 5}, 5);
  nb_field_int(&b, "rarity_upgrades", 1);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.attrs, "stars=5,recomb,ench=ultimate_aaaaaaaaaaaaaaaaaaaa1+"
                                "ultimate_bbbbbbbbbbbbbbbbbbbb2+ultimate_cccccccccccccccccccc3");

  /* A pet with a broken petInfo still decodes, under a key of its own. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "[Lvl 1] ?", "EPIC", "PET");
  nb_field_str(&b, "petInfo", "{not json");
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "PET:UNKNOWN");
  assert_int_equal(it.kind, SB_KIND_PET);

  /* Held item and skin ids as long as the fields hold: the tokens are
   * longer than a short buffer would be; what fits is kept whole. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "[Lvl 1] Bee", "EPIC", "PET");
  char info[400], held[64], skin[64];
  memset(held, 'H', 63), held[63] = '\0';
  memset(skin, 'S', 63), skin[63] = '\0';
  snprintf(info, sizeof info,
           "{\"type\":\"BEE\",\"exp\":0,\"tier\":\"EPIC\",\"heldItem\":\"%s\",\"skin\":\"%s\","
           "\"candyUsed\":1}",
           held, skin);
  nb_field_str(&b, "petInfo", info);
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.pet_held, held);
  char want[128];
  snprintf(want, sizeof want, "held=%s,candy", held); /* skin=... would not fit */
  assert_string_equal(it.attrs, want);

  /* Golden Dragon levels to 200. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "[Lvl 200] Golden Dragon", "LEGENDARY", "PET");
  nb_field_str(&b, "petInfo", "{\"type\":\"GOLDEN_DRAGON\",\"exp\":2.2E8,\"tier\":\"LEGENDARY\"}");
  nb_item_end(&b);
  decode_doc(&b, &it);
  assert_string_equal(it.key, "PET:GOLDEN_DRAGON:LEGENDARY:L200");
  assert_int_equal(it.pet_level, 200);

  /* No ExtraAttributes.id: not a SkyBlock item; Count 0: corrupt. */
  souk_buf_reset(&b);
  nb_item_begin(&b, 1, "X", "EPIC", "");
  nb_item_end(&b);
  souk_buf_t ib = {0};
  sbt_item_bytes(&b, &ib);
  sb_decoder_t *d = sb_decoder_new();
  assert_int_equal(sb_item_decode(d, ib.data, ib.len, &it), SOUK_ENOTFOUND);
  souk_buf_reset(&b);
  nb_item_begin(&b, 0, "X", "EPIC", "STONE");
  nb_item_end(&b);
  sbt_item_bytes(&b, &ib);
  assert_int_equal(sb_item_decode(d, ib.data, ib.len, &it), SOUK_EPARSE);
  sb_decoder_free(d);
  souk_buf_free(&ib);
  souk_buf_free(&b);
}

/* The pet XP table against levels the game itself printed (the real page's
 * item names, checked in test_keys_page) at the edges of each rarity. */
static void test_pet_levels(void **state) {
  /* Legendary: 25,353,230 exp to level 100, the figure every profile viewer
   * shows; one exp less is 99. */
  assert_int_equal(sb_pet_level(25353230, SB_RARITY_LEGENDARY, 100), 100);
  assert_int_equal(sb_pet_level(25353229, SB_RARITY_LEGENDARY, 100), 99);
  assert_int_equal(sb_pet_level(1e12, SB_RARITY_LEGENDARY, 100), 100);
  /* Common: level 2 at 100 exp, level 100 at 5,624,785. */
  assert_int_equal(sb_pet_level(99.9, SB_RARITY_COMMON, 100), 1);
  assert_int_equal(sb_pet_level(100, SB_RARITY_COMMON, 100), 2);
  assert_int_equal(sb_pet_level(5624785, SB_RARITY_COMMON, 100), 100);
  /* Legendary level 2 needs the table's 21st entry, 660. */
  assert_int_equal(sb_pet_level(659, SB_RARITY_LEGENDARY, 100), 1);
  assert_int_equal(sb_pet_level(660, SB_RARITY_LEGENDARY, 100), 2);
  assert_int_equal(sb_pet_level(NAN, SB_RARITY_EPIC, 100), 1);
  assert_int_equal(sb_pet_level(-5, SB_RARITY_EPIC, 100), 1);
  /* Past 100, 1,886,700 a level. */
  assert_int_equal(sb_pet_level(25353230 + 1886700 * 50.0, SB_RARITY_LEGENDARY, 200), 150);
  assert_string_equal(sb_pet_bracket(1, 100), "L1");
  assert_string_equal(sb_pet_bracket(49, 100), "L2-49");
  assert_string_equal(sb_pet_bracket(50, 100), "L50-79");
  assert_string_equal(sb_pet_bracket(99, 100), "L90-99");
  assert_string_equal(sb_pet_bracket(100, 200), "L100");
  assert_string_equal(sb_pet_bracket(150, 200), "L150-199");
  assert_int_equal(sb_pet_max_level("JADE_DRAGON"), 200);
  assert_int_equal(sb_pet_max_level("ENDER_DRAGON"), 100);
}

/* ---- gzip and the JSON entry point ------------------------------------- */

static void test_gzip_hostile(void **state) {
  souk_buf_t b = {0}, gz = {0}, ib = {0};
  nb_item_begin(&b, 1, "Name", "EPIC", "THING");
  nb_item_end(&b);
  sbt_gzip(b.data, b.len, &gz);
  const uint8_t *out;
  size_t n;
  for (int which = 0; which < SB_INFLATE_COUNT; which++) {
    sb_decoder_t *d = sb_decoder_new();
    sb_decoder_set_inflater(d, (sb_inflater_t)which);
    assert_int_equal(sb_decode_gunzip(d, (uint8_t *)gz.data, gz.len, &out, &n), 0);
    assert_int_equal(n, b.len);
    assert_memory_equal(out, b.data, n);
    /* A wrong CRC-32, a wrong ISIZE (both ways), bytes after the member,
     * a truncated stream, a corrupt header: all refused. */
    souk_buf_t bad = {0};
    size_t crc = gz.len - 8, isz = gz.len - 4;
    int cases[] = {0, 1, 2, 3, 4, 5};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
      souk_buf_reset(&bad);
      souk_buf_append(&bad, gz.data, gz.len);
      switch (cases[k]) {
      case 0:
        bad.data[crc] ^= 1;
        break;
      case 1:
        bad.data[isz] += 1;
        break;
      case 2:
        bad.data[isz] -= 1;
        break;
      case 3:
        souk_buf_putc(&bad, 0);
        break;
      case 4:
        bad.len -= 9;
        break;
      case 5:
        bad.data[0] = 0x1e;
        break;
      }
      assert_int_not_equal(sb_decode_gunzip(d, (uint8_t *)bad.data, bad.len, &out, &n), 0);
    }
    /* A bomb: 16 MB of zeros compress to 16 KB, ISIZE says 16 MB. */
    size_t big = 16u << 20;
    char *zeros = souk_calloc(1, big);
    sbt_gzip(zeros, big, &bad);
    souk_free(zeros);
    assert_int_equal(sb_decode_gunzip(d, (uint8_t *)bad.data, bad.len, &out, &n), SOUK_ETOOBIG);
    /* The same bomb with ISIZE forged small: the output buffer stops it. */
    bad.data[bad.len - 2] = 0; /* ISIZE 16 MB -> 0 */
    bad.data[bad.len - 1] = 0;
    assert_int_equal(sb_decode_gunzip(d, (uint8_t *)bad.data, bad.len, &out, &n), SOUK_EPARSE);
    souk_buf_free(&bad);
    sb_decoder_free(d);
  }
  /* Every truncation of a real item's base64 (and so of its gzip) fails
   * cleanly; so does every single flipped byte of its gzip (the CRC
   * catches what inflate does not). */
  sbt_b64(gz.data, gz.len, &ib);
  sb_decoder_t *d = sb_decoder_new();
  sb_item_t it;
  for (size_t k = 0; k < ib.len; k++)
    assert_int_not_equal(sb_item_decode(d, ib.data, k, &it), 0);
  souk_buf_t flip = {0};
  for (size_t k = 0; k < gz.len; k++) {
    souk_buf_reset(&flip);
    souk_buf_append(&flip, gz.data, gz.len);
    flip.data[k] ^= 0x55;
    /* Bytes 4-9 of the header (mtime, flags' extra bits, OS) are not
     * checked by anyone: skip them. */
    if (k >= 4 && k < 10) continue;
    assert_int_not_equal(sb_decode_gunzip(d, (uint8_t *)flip.data, flip.len, &out, &n), 0);
  }
  sb_decoder_free(d);
  souk_buf_free(&flip);
  souk_buf_free(&b);
  souk_buf_free(&gz);
  souk_buf_free(&ib);
}

/* Every byte of a real item's NBT flipped, and every truncation: the walk
 * and the JSON writer return (0 or an error), never crash or leak. */
static void test_nbt_mutations(void **state) {
  size_t n;
  char *text = sbt_read_file(FIX "auctions-page0-2025-06-08.subset25.json", &n);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, n), 0);
  int arr = souk_json_get(&j, 0, "auctions");
  sb_decoder_t *d = sb_decoder_new();
  souk_buf_t json = {0};
  size_t errors = 0;
  for (size_t i = 0; i < 25; i += 6) {
    size_t bl;
    const char *b64 =
        souk_json_raw(&j, souk_json_get(&j, souk_json_at(&j, arr, i), "item_bytes"), &bl);
    const uint8_t *gz, *nbt;
    size_t gzl, nl;
    assert_int_equal(sb_decode_base64(d, b64, bl, &gz, &gzl), 0);
    assert_int_equal(sb_decode_gunzip(d, gz, gzl, &nbt, &nl), 0);
    uint8_t *copy = souk_malloc(nl);
    memcpy(copy, nbt, nl);
    sb_item_t it;
    for (size_t k = 0; k < nl; k++) {
      errors += sb_item_from_nbt(d, copy, k, &it) != 0;
      for (unsigned v = 0; v < 3; v++) {
        uint8_t keep = copy[k];
        copy[k] = (uint8_t)(v == 0 ? keep ^ 0x80 : v == 1 ? 0xFF : 0x00);
        sb_item_from_nbt(d, copy, nl, &it);
        souk_buf_reset(&json);
        sb_nbt_json(copy, nl, &json);
        copy[k] = keep;
      }
    }
    souk_free(copy);
  }
  /* Every strict prefix is an error. */
  assert_true(errors > 0);
  sb_decoder_free(d);
  souk_buf_free(&json);
  souk_json_free(&j);
  souk_free(text);
}

static void test_decode_json_forms(void **state) {
  /* The object form of GET /skyblock/auction?uuid= (Hypixel's docs). */
  size_t n;
  char *text = sbt_read_file(FIX "doc-example-auction-by-uuid.json", &n);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, n), 0);
  int ib = souk_json_path(&j, 0, "auctions", NULL);
  ib = souk_json_get(&j, souk_json_at(&j, ib, 0), "item_bytes");
  assert_int_equal(souk_json_type(&j, ib), SOUK_JSON_OBJECT);
  sb_decoder_t *d = sb_decoder_new();
  sb_item_t obj, str;
  assert_int_equal(sb_item_decode_json(d, &j, ib, &obj), 0);
  assert_true(obj.id[0] != '\0');
  /* The same base64 as a plain string with '=' escaped as Gson writes it
   * decodes to the same item. */
  size_t bl;
  const char *b64 = souk_json_raw(&j, souk_json_get(&j, ib, "data"), &bl);
  souk_buf_t doc = {0};
  souk_buf_puts(&doc, "{\"item_bytes\":\"");
  for (size_t i = 0; i < bl; i++) {
    if (b64[i] == '=')
      souk_buf_puts(&doc, "\\u003d");
    else
      souk_buf_putc(&doc, b64[i]);
  }
  souk_buf_puts(&doc, "\"}");
  souk_json_t j2 = {0};
  assert_int_equal(souk_json_parse(&j2, doc.data, doc.len), 0);
  assert_true(j2.toks[souk_json_get(&j2, 0, "item_bytes")].escaped);
  assert_int_equal(sb_item_decode_json(d, &j2, souk_json_get(&j2, 0, "item_bytes"), &str), 0);
  assert_memory_equal(&obj, &str, sizeof obj);
  /* Neither form: a number. */
  assert_int_equal(sb_item_decode_json(d, &j, souk_json_get(&j, 0, "success"), &str), SOUK_EINVAL);
  sb_decoder_free(d);
  souk_json_free(&j);
  souk_json_free(&j2);
  souk_buf_free(&doc);
  souk_free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_base64),        cmocka_unit_test(test_mutf8),
      cmocka_unit_test(test_nbt_all_types), cmocka_unit_test(test_nbt_hostile),
      cmocka_unit_test(test_oracle),        cmocka_unit_test(test_keys_subset),
      cmocka_unit_test(test_keys_page),     cmocka_unit_test(test_keys_synthetic),
      cmocka_unit_test(test_pet_levels),    cmocka_unit_test(test_gzip_hostile),
      cmocka_unit_test(test_nbt_mutations), cmocka_unit_test(test_decode_json_forms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
