/* The `store` config section. */
#ifndef SOUK_STORE_STORECONF_H
#define SOUK_STORE_STORECONF_H

#include "souk/conf.h"
#include "souk/store.h"

/** Key table of the `store` section. */
extern const souk_conf_key_t souk_store_conf_keys[];
/** Checks of the `store` keys beyond their types (store.url's scheme). */
extern const souk_conf_check_t souk_store_conf_checks[];
/** The live values. */
extern souk_store_conf_t souk_store_conf;

#endif
