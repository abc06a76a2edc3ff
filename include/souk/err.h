/* souk error codes.
 *
 * Functions return 0 on success or one negative SOUK_E* code.  The codes and
 * their messages come from one X-macro table, as libuv's UV_ERRNO_MAP does,
 * so souk_strerror() can never fall out of step with the enum.  If a
 * function that takes a callback fails, the callback is never called. */
#ifndef SOUK_ERR_H
#define SOUK_ERR_H

#include <stdio.h>
#include <stdlib.h>

#define SOUK_ERRNO_MAP(X)                                                    \
  X(EINVAL, "invalid argument")                                              \
  X(ENOMEM, "out of memory")                                                 \
  X(EIO, "input/output error")                                               \
  X(ETIMEDOUT, "timed out")                                                  \
  X(EPROTO, "protocol error")                                                \
  X(EPARSE, "malformed input")                                               \
  X(ECONFIG, "configuration error")                                          \
  X(EFULL, "queue full")                                                     \
  X(ECANCELED, "canceled")                                                   \
  X(ENOTFOUND, "not found")                                                  \
  X(EEXIST, "already exists")                                                \
  X(ERANGE, "value out of range")                                            \
  X(ETOOBIG, "too large")                                                    \
  X(ERATELIMIT, "rate limited")                                              \
  X(EHTTP, "HTTP error status")                                              \
  X(EAUTH, "authentication failed")                                          \
  X(EFORBIDDEN, "forbidden")                                                 \
  X(ECONN, "connection failed")                                              \
  X(ECLOSED, "connection closed")                                            \
  X(EBUSY, "resource busy")                                                  \
  X(ESTOPPED, "shutting down")                                               \
  X(EFATAL, "fatal error")                                                  \
  X(ENOTSUP, "not supported")                                                \
  X(ENOSPC, "no space left on the disk")                                     \
  X(ECORRUPT, "the database file is damaged")                                \
  X(ESTALE, "a newer lease holder has written since")

/** Error codes: all negative, 0 is success. */
typedef enum souk_errno {
  SOUK_OK = 0,
  SOUK__EBASE = -1000,
#define SOUK_ERR_ENUM(name, msg) SOUK_##name,
  SOUK_ERRNO_MAP(SOUK_ERR_ENUM)
#undef SOUK_ERR_ENUM
  SOUK__EMAX
} souk_errno_t;

/** Static message for a SOUK_E* code (or a negative errno); never NULL. */
const char *souk_strerror(int err);
/** Static name such as "ETIMEDOUT" for a SOUK_E* code; never NULL. */
const char *souk_errname(int err);
/** The SOUK_E* code for a failed file operation's errno: SOUK_ENOSPC for a
 * full disk or quota (ENOSPC, EDQUOT), SOUK_ENOMEM, else SOUK_EIO. */
int souk_err_from_errno(int errnum);

/** Abort with file and line: for broken invariants, never for bad input. */
#define SOUK_ASSERT(cond)                                                    \
  do {                                                                       \
    if (!(cond)) souk__assert_fail(#cond, __FILE__, __LINE__, __func__);     \
  } while (0)

_Noreturn void souk__assert_fail(const char *expr, const char *file, int line,
                                 const char *func);

#endif
