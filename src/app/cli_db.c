/* `souk db ...`: maintenance of the store from the command line.  Compiled
 * into the executable only (it needs the store library). */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "app/cli.h"
#include "app/modreg.h"
#include "core/core.h"
#include "store/storeconf.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/store.h"

static int open_store(bool migrate, souk_store_t **st) {
  souk_store_conf_t c = souk__store_conf;
  c.migrate = migrate;
  int rc = souk_store_open(&c, souk__core_conf.data_dir, st);
  if (rc) fprintf(stderr, "souk db: cannot open the store: %s\n", souk_strerror(rc));
  return rc;
}

static int parse_id(const char *s, int64_t *out) {
  char *end;
  unsigned long long v = s ? strtoull(s, &end, 10) : 0;
  if (!s || !*s || *end || v == 0 || v > INT64_MAX || strlen(s) < 17 || strlen(s) > 20) return -1;
  *out = (int64_t)v;
  return 0;
}

static void usage_db(void) {
  fprintf(stderr, "usage: souk db migrate | check | backup PATH | vacuum | copy --to URL |\n"
                  "               forget-user ID | purge-guild ID\n");
}

int souk__cli_db(int argc, char **argv, const char *to_url) {
  if (argc < 1) {
    usage_db();
    return 2;
  }
  const char *sub = argv[0];
  souk_store_t *st = NULL;
  souk_buf_t rep;
  souk_buf_init(&rep);
  int rc = 0, code = 0;
  if (!strcmp(sub, "migrate") && argc == 1) {
    /* Open without migrating, then migrate here to report what ran; the
     * backup-before-migrate setting still applies inside. */
    if ((rc = open_store(false, &st)) == 0) {
      int applied = 0, v = 0;
      rc = souk__store_migrate(st, &applied);
      if (rc == 0) souk_store_schema_version(st, &v);
      if (rc == 0) printf("schema at version %d (%d migration(s) applied)\n", v, applied);
      /* Then each module's own schema, as the module registry would at
       * start. */
      for (size_t i = 0; rc == 0 && i < souk__modreg_count(); i++) {
        const souk_module_t *m = souk__modreg_at(i);
        if (!m->migrations) continue;
        rc = souk_store_migrate_module(st, m->name, m->migrations, &applied);
        if (rc == 0) souk_store_module_version(st, m->name, &v);
        if (rc == 0)
          printf("module %s: schema at version %d (%d migration(s) applied)\n", m->name, v,
                 applied);
      }
    }
  } else if (!strcmp(sub, "check") && argc == 1) {
    if ((rc = open_store(false, &st)) == 0) {
      rc = souk_store_check(st, &rep);
      fputs(rep.data ? rep.data : "", stdout);
    }
  } else if (!strcmp(sub, "backup") && argc == 2) {
    if ((rc = open_store(false, &st)) == 0 && (rc = souk_store_backup(st, argv[1])) == 0)
      printf("backup written to %s\n", argv[1]);
  } else if (!strcmp(sub, "vacuum") && argc == 1) {
    if ((rc = open_store(false, &st)) == 0 && (rc = souk_store_vacuum(st)) == 0)
      printf("vacuum done\n");
  } else if (!strcmp(sub, "copy") && argc == 1 && to_url) {
    if ((rc = open_store(false, &st)) == 0) {
      rc = souk_store_copy(st, to_url, 1000, &rep);
      fputs(rep.data ? rep.data : "", stdout);
    }
  } else if ((!strcmp(sub, "forget-user") || !strcmp(sub, "purge-guild")) && argc == 2) {
    int64_t id, deleted = 0;
    if (parse_id(argv[1], &id)) {
      fprintf(stderr, "souk db %s: '%s' is not a Discord id (17-20 digits)\n", sub, argv[1]);
      code = 2;
    } else if ((rc = souk__modreg_register_data()) == 0 && (rc = open_store(true, &st)) == 0) {
      /* No module runs here: their .data tables say where people's data
       * is.  Their own schemas first, so a table a module adds exists. */
      for (size_t i = 0; rc == 0 && i < souk__modreg_count(); i++) {
        const souk_module_t *m = souk__modreg_at(i);
        if (m->migrations) rc = souk_store_migrate_module(st, m->name, m->migrations, NULL);
      }
      if (rc == 0)
        rc = !strcmp(sub, "forget-user") ? souk_store_forget_user(st, id, &deleted)
                                         : souk_store_purge_guild(st, id, &deleted);
      if (rc == 0) printf("%" PRId64 " row(s) deleted\n", deleted);
    }
  } else {
    usage_db();
    code = 2;
  }
  if (rc && !code) {
    fprintf(stderr, "souk db %s failed: %s\n", sub, souk_strerror(rc));
    code = 1;
  }
  souk_store_close(st);
  souk_buf_free(&rep);
  return code;
}
