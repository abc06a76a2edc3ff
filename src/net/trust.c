/* Trusted CA certificates for the TLS clients: see trust.h. */
#include "trust.h"

#include "souk/alloc.h"

#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

static char *g_ca_file;

void souk_trust_set_ca_file(const char *path) {
  souk_free(g_ca_file);
  g_ca_file = path && *path ? souk_strdup(path) : NULL;
}

const char *souk_trust_ca_file(void) { return g_ca_file; }

const char *souk_trust_ca_dir(void) {
  const char *dir = getenv(X509_get_default_cert_dir_env());
  if (!dir || !*dir) dir = X509_get_default_cert_dir();
  return access(dir, R_OK | X_OK) == 0 ? dir : NULL;
}

const char *souk_trust_ca_bundle(void) {
  const char *file = getenv(X509_get_default_cert_file_env());
  return file && *file ? file : X509_get_default_cert_file();
}
