/* Snowflake ids. */
#ifndef SOUK_DISCORD_SNOWFLAKE_H
#define SOUK_DISCORD_SNOWFLAKE_H

#include <stdint.h>

#include "souk/json.h"

/** Discord's epoch, the first second of 2015, in Unix milliseconds. */
#define SOUK_DISCORD_EPOCH_MS UINT64_C(1420070400000)

/** Parse a decimal snowflake of 17-20 digits.  0 or SOUK_EINVAL/ERANGE. */
int souk__snowflake_parse(const char *s, uint64_t *out);
/** Creation time encoded in an id, Unix milliseconds. */
uint64_t souk__snowflake_unix_ms(uint64_t id);

/** The id in token t of j (a snowflake string, or a number), or 0 when t
 * is absent or malformed. */
uint64_t souk__json_id(const souk_json_t *j, int t);

#endif
