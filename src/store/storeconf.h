/* The wiring's side of the store (souk/store.h is what modules see): the
 * `store` config section and `souk db migrate`. */
#ifndef SOUK_STORE_STORECONF_H
#define SOUK_STORE_STORECONF_H

#include "souk/conf.h"
#include "souk/store.h"

/** Key table of the `store` section. */
extern const souk_conf_key_t souk__store_conf_keys[];
/** Checks of the `store` keys beyond their types (store.url's scheme). */
extern const souk_conf_check_t souk__store_conf_checks[];
/** The live values. */
extern souk_store_conf_t souk__store_conf;

/** Apply pending migrations (what `souk db migrate` runs).  *applied (may be
 * NULL) receives how many ran.  Returns 0, SOUK_EFATAL for a newer schema,
 * or SOUK_E*. */
int souk__store_migrate(souk_store_t *st, int *applied);

#endif
