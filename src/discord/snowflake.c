/* Snowflake ids: parsing and the timestamp they carry. */
#include "discord/snowflake.h"

#include <stdlib.h>
#include <string.h>

#include "souk/err.h"

int souk__snowflake_parse(const char *s, uint64_t *out) {
  if (!s) return SOUK_EINVAL;
  size_t n = strlen(s);
  /* Discord ids are 17 to 20 digits; anything else is a typo. */
  if (n < 17 || n > 20) return SOUK_EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return SOUK_EINVAL;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return SOUK_ERANGE;
    v = v * 10 + d;
  }
  if (v == 0) return SOUK_EINVAL;
  *out = v;
  return 0;
}

uint64_t souk__snowflake_unix_ms(uint64_t id) { return (id >> 22) + SOUK_DISCORD_EPOCH_MS; }

uint64_t souk__json_id(const souk_json_t *j, int t) {
  uint64_t v = 0;
  if (t < 0) return 0;
  if (souk_json_u64(j, t, &v) != 0) {
    /* Snowflakes arrive as strings, possibly escaped; a malformed one
     * reads as 0. */
    char tmp[24];
    char *end;
    v = 0;
    if (souk_json_str(j, t, tmp, sizeof tmp) > 0) {
      unsigned long long x = strtoull(tmp, &end, 10);
      if (*end == '\0' && tmp[0] >= '0' && tmp[0] <= '9') v = x;
    }
  }
  return v;
}
