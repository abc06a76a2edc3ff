/* Helpers shared by the command registry (cmd.c) and its parser
 * (cmd_parse.c).  Core-internal: modules include souk/cmd.h only. */
#ifndef SOUK_CORE_CMD_INT_H
#define SOUK_CORE_CMD_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/cmdreg.h"
#include "souk/cmd.h"

/** Unicode characters in s[0..n) of UTF-8, counting lead bytes, as Discord
 * counts its length limits. */
size_t souk__cmd_utf8_chars(const char *s, size_t n);
/** True if s[0..n) is a valid command or option name: 1-32 of [-_a-z0-9]. */
bool souk__cmd_name_ok(const char *s, size_t n);
/** Subcommand (or group) of parent called name[0..n), or NULL. */
const struct souk_command *souk__cmd_sub(const struct souk_command *parent, const char *name,
                                         size_t n);
/** Convert text s[0..n) to a value of type t in v (i, num, b or id; text is
 * not touched, so nothing is allocated).  Mentions are accepted for their
 * type.  Returns 0, SOUK_EINVAL (not of that type) or SOUK_ERANGE (an
 * integer that overflows int64). */
int souk__cmd_convert(souk_cmd_opt_type_t t, const char *s, size_t n, souk_cmd_arg_t *v);
/** "string", "integer", ... for log messages. */
const char *souk__cmd_type_name(souk_cmd_opt_type_t t);

#endif
