/* Writing a handler's souk_msg_t, modal or choices as Discord JSON, within
 * Discord's limits: text longer than a field allows is cut at a character
 * boundary with an ellipsis, never refused; content is split by the caller
 * (souk__msg_chunk) and written one chunk per message. */
#ifndef SOUK_DISCORD_DMSG_H
#define SOUK_DISCORD_DMSG_H

#include <stdbool.h>
#include <stddef.h>

#include "souk/buf.h"
#include "souk/cmd.h"

/** Message flag: only the invoking user sees it. */
#define SOUK_DMSG_EPHEMERAL 64

/** Write the members of a message object into the open object of w:
 * "content" (content[0..clen), omitted when clen is 0), then, with
 * with_extras, "embeds" and "components" of m; with replace (an edit that
 * replaces a whole message) content, embeds and components are always
 * written, empty when m has none; always "allowed_mentions"
 * that parses nothing (a reply never pings @everyone, a role or a user by
 * accident); and "flags" when flags is not 0. */
void souk__dmsg_write(souk_jw_t *w, const souk_msg_t *m, const char *content, size_t clen,
                      bool with_extras, bool replace, unsigned flags);

/** Write a modal's "data" members (custom_id, title, components) into the
 * open object of w. */
void souk__dmsg_modal(souk_jw_t *w, const souk_modal_t *m);

/** Write an autocomplete answer's "choices" array member, each value typed
 * as type (numbers for INTEGER and NUMBER, a value that does not parse is
 * left out). */
void souk__dmsg_choices(souk_jw_t *w, const souk_cmd_choice_t *c, size_t n,
                        souk_cmd_opt_type_t type);

/** Write the registry's commands as the JSON array of application commands
 * for a bulk overwrite (PUT /applications/{id}/commands). */
void souk__dmsg_commands(souk_buf_t *out);

/** Write text cut to max characters (Unicode code points), ending in "…"
 * when it was cut; NULL writes "". */
void souk__dmsg_str_max(souk_jw_t *w, const char *text, size_t max);

#endif
