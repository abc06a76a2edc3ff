/* The modules linked into souk, in start order: the one list a new module
 * is added to (docs/modules.md, "Registering the module").  This file is
 * compiled into the executable only, so no library names a module. */
#include "app/modreg.h"

extern const souk_module_t souk_admin_module;
extern const souk_module_t souk_economy_module;
extern const souk_module_t souk_guilds_module;
extern const souk_module_t souk_help_module;
extern const souk_module_t souk_market_module;
extern const souk_module_t souk_ping_module;
extern const souk_module_t souk_scanner_module;
extern const souk_module_t souk_setup_module;
extern const souk_module_t souk_stats_module;
extern const souk_module_t souk_skyblock_module;
#ifdef SOUK_TEST_HOOKS
/* Test builds only (tests/hooks): see CMakeLists.txt. */
extern const souk_module_t souk_testhooks_module;
#endif

const souk_module_t *const souk__modules[] = {
    &souk_guilds_module,
    &souk_ping_module,
    &souk_help_module,
    &souk_admin_module,
    &souk_market_module,
    &souk_economy_module,
    &souk_scanner_module,
    &souk_stats_module,
    &souk_setup_module,
    &souk_skyblock_module,
#ifdef SOUK_TEST_HOOKS
    &souk_testhooks_module,
#endif
    NULL,
};
