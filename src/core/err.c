/* Error strings from the one X-macro table in include/souk/err.h. */
#include "souk/err.h"

#include <errno.h>
#include <string.h>

int souk_err_from_errno(int errnum) {
  switch (errnum) {
  case ENOSPC:
  case EDQUOT:
    return SOUK_ENOSPC;
  case ENOMEM:
    return SOUK_ENOMEM;
  default:
    return SOUK_EIO;
  }
}

const char *souk_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define SOUK_ERR_STR(name, msg)                                               \
  case SOUK_##name:                                                          \
    return msg;
    SOUK_ERRNO_MAP(SOUK_ERR_STR)
#undef SOUK_ERR_STR
  default:
    /* Plain negative errno values are passed through from the OS. */
    if (err < 0 && err > -4096) return strerror(-err);
    return "unknown error";
  }
}

const char *souk_errname(int err) {
  switch (err) {
  case 0:
    return "OK";
#define SOUK_ERR_NAME(name, msg)                                              \
  case SOUK_##name:                                                          \
    return #name;
    SOUK_ERRNO_MAP(SOUK_ERR_NAME)
#undef SOUK_ERR_NAME
  default:
    return "EUNKNOWN";
  }
}

void souk__assert_fail(const char *expr, const char *file, int line,
                       const char *func) {
  fprintf(stderr, "souk: assertion failed: %s (%s:%d, %s)\n", expr, file, line,
          func);
  fflush(stderr);
  abort();
}
