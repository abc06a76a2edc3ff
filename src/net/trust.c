/* Trusted CA certificates for the TLS clients: see trust.h. */
#include "trust.h"

#include "souk/alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char *g_ca_file;

/* The last directory list looked at and whether it was usable: the answer
 * is asked for on every HTTPS request and changes only with SSL_CERT_DIR. */
static char *g_dir_checked;
static bool g_dir_usable;

void souk__trust_set_ca_file(const char *path) {
  souk_free(g_ca_file);
  g_ca_file = path && *path ? souk_strdup(path) : NULL;
}

const char *souk__trust_ca_file(void) { return g_ca_file; }

/* True when the directory holds at least one certificate link named as
 * OpenSSL looks them up: eight hex digits of the subject hash, ".", a
 * digit ("5ad8a5d6.0").  A directory of plain PEM files is no use to the
 * lookup, and trusting it would make every handshake fail. */
static bool hashed_dir(const char *dir, size_t len) {
  char path[4096];
  if (len == 0 || len >= sizeof path) return false;
  memcpy(path, dir, len);
  path[len] = '\0';
  DIR *d = opendir(path);
  if (!d) return false;
  bool found = false;
  struct dirent *e;
  while (!found && (e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    size_t i = 0;
    while (i < 8 && isxdigit((unsigned char)n[i]))
      i++;
    found = i == 8 && n[8] == '.' && isdigit((unsigned char)n[9]);
  }
  closedir(d);
  return found;
}

const char *souk__trust_ca_dir(void) {
  const char *dirs = getenv(X509_get_default_cert_dir_env());
  if (!dirs || !*dirs) dirs = X509_get_default_cert_dir();
  if (!g_dir_checked || strcmp(g_dir_checked, dirs) != 0) {
    souk_free(g_dir_checked);
    g_dir_checked = souk_strdup(dirs);
    /* OpenSSL and libcurl both take a ':'-separated list: usable when
     * one of its directories is. */
    g_dir_usable = false;
    for (const char *p = dirs; !g_dir_usable;) {
      const char *end = strchr(p, ':');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      g_dir_usable = hashed_dir(p, len);
      if (!end) break;
      p = end + 1;
    }
  }
  return g_dir_usable ? g_dir_checked : NULL;
}

const char *souk__trust_ca_bundle(void) {
  const char *file = getenv(X509_get_default_cert_file_env());
  return file && *file ? file : X509_get_default_cert_file();
}
