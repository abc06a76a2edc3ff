/* Polls (see polls.h). */
#include "polls.h"

#include "souk/buf.h"
#include "souk/err.h"

#include <stdio.h>
#include <string.h>

const char *economy_poll_invalid(const char *question, const char *const *options, size_t n) {
  size_t ql = question ? strlen(question) : 0;
  if (ql == 0) return "A poll needs a question.";
  if (ql > ECONOMY_POLL_QUESTION_MAX) return "The question is too long (200 characters at most).";
  if (n < 2 || n > ECONOMY_POLL_OPTIONS_MAX) return "A poll has 2 to 10 options.";
  for (size_t i = 0; i < n; i++) {
    size_t l = options[i] ? strlen(options[i]) : 0;
    if (l == 0) return "An option is empty.";
    if (l > ECONOMY_POLL_OPTION_MAX) return "An option is too long (60 characters at most).";
    if (strpbrk(options[i], "\r\n")) return "An option cannot span lines.";
    for (size_t k = 0; k < i; k++)
      if (strcmp(options[k], options[i]) == 0) return "Two options are the same.";
  }
  return NULL;
}

int economy_poll_create(souk_db_t *db, int64_t guild_id, int64_t channel_id, int64_t creator_id,
                        const char *question, const char *const *options, size_t n, int64_t now_ms,
                        int64_t *id) {
  if (!db || !id || economy_poll_invalid(question, options, n)) return SOUK_EINVAL;
  souk_buf_t b;
  souk_buf_init(&b);
  for (size_t i = 0; i < n; i++)
    souk_buf_printf(&b, "%s%s", i ? "\n" : "", options[i]);
  souk_stmt_t *s;
  int rc =
      souk_db_preparef(db, &s,
                       "INSERT INTO economy_polls (guild_id, channel_id, creator_id, question, "
                       "options, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                       "iiissi", guild_id, channel_id, creator_id, question, b.data, now_ms);
  souk_buf_free(&b);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) *id = souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc == 1 ? 0 : rc < 0 ? rc : SOUK_EIO;
}

int economy_poll_get(souk_db_t *db, int64_t poll_id, economy_poll_t *out) {
  if (!db || !out) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s,
                            "SELECT guild_id, channel_id, creator_id, question, options, version, "
                            "closed FROM economy_polls WHERE id = ?",
                            "i", poll_id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    out->id = poll_id;
    out->guild_id = souk_stmt_column_int64(s, 0);
    out->channel_id = souk_stmt_column_int64(s, 1);
    out->creator_id = souk_stmt_column_int64(s, 2);
    const char *q = souk_stmt_column_text(s, 3, NULL);
    snprintf(out->question, sizeof out->question, "%s", q ? q : "");
    const char *o = souk_stmt_column_text(s, 4, NULL);
    /* Options are stored one per line. */
    while (o && *o && out->noptions < ECONOMY_POLL_OPTIONS_MAX) {
      const char *nl = strchr(o, '\n');
      size_t l = nl ? (size_t)(nl - o) : strlen(o);
      snprintf(out->options[out->noptions++], ECONOMY_POLL_OPTION_MAX + 1, "%.*s", (int)l, o);
      o = nl ? nl + 1 : NULL;
    }
    out->version = souk_stmt_column_int64(s, 5);
    out->closed = souk_stmt_column_int64(s, 6) != 0;
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  if (rc != 0) return rc;
  rc = souk_db_preparef(db, &s,
                        "SELECT choice, CAST(COUNT(*) AS BIGINT) FROM economy_poll_votes "
                        "WHERE poll_id = ? GROUP BY choice",
                        "i", poll_id);
  if (rc != 0) return rc;
  while ((rc = souk_stmt_step(s)) == 1) {
    int64_t c = souk_stmt_column_int64(s, 0), v = souk_stmt_column_int64(s, 1);
    if (c >= 0 && (size_t)c < out->noptions) out->votes[c] = v;
    out->voters += v;
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int economy_poll_vote(souk_db_t *db, int64_t poll_id, int64_t user_id, int64_t choice,
                      int64_t now_ms, bool *changed, economy_poll_t *out) {
  if (!db || !changed || !out) return SOUK_EINVAL;
  *changed = false;
  /* Bump the version first: on PostgreSQL that locks the poll's row, so
   * votes (and closing) on one poll commit one after another and each
   * reads the tally its own version belongs to.  A bump that changes
   * nothing else is harmless: the version only orders tallies. */
  int64_t n = 0;
  int rc = souk_db_runf(db, &n, "UPDATE economy_polls SET version = version + 1 WHERE id = ?", "i",
                        poll_id);
  if (rc != 0) return rc;
  if (n != 1) return SOUK_ENOTFOUND;
  rc = economy_poll_get(db, poll_id, out);
  if (rc != 0) return rc;
  if (choice < 0 || (size_t)choice >= out->noptions) return SOUK_EINVAL;
  if (out->closed) return 0;
  rc = souk_db_runf(db, &n,
                    "INSERT INTO economy_poll_votes (poll_id, user_id, choice, voted_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (poll_id, user_id) DO UPDATE SET "
                    "choice = excluded.choice, voted_at = excluded.voted_at "
                    "WHERE economy_poll_votes.choice <> excluded.choice",
                    "iiii", poll_id, user_id, choice, now_ms);
  if (rc != 0) return rc;
  if (n == 0) return 0; /* the same vote again */
  *changed = true;
  return economy_poll_get(db, poll_id, out);
}

int economy_poll_choice_of(souk_db_t *db, int64_t poll_id, int64_t user_id, int64_t *choice) {
  if (!db || !choice) return SOUK_EINVAL;
  *choice = -1;
  souk_stmt_t *s;
  int rc = souk_db_preparef(
      db, &s, "SELECT choice FROM economy_poll_votes WHERE poll_id = ? AND user_id = ?", "ii",
      poll_id, user_id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) *choice = souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int economy_poll_close(souk_db_t *db, int64_t poll_id, economy_poll_t *out) {
  if (!db || !out) return SOUK_EINVAL;
  int64_t n = 0;
  int rc = souk_db_runf(db, &n,
                        "UPDATE economy_polls SET closed = 1, version = version + 1 WHERE id = ?",
                        "i", poll_id);
  if (rc != 0) return rc;
  if (n != 1) return SOUK_ENOTFOUND;
  return economy_poll_get(db, poll_id, out);
}
