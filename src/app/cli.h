/* Command-line subcommands that live in the executable. */
#ifndef SOUK_APP_CLI_H
#define SOUK_APP_CLI_H

/** `souk db SUB [ARGS]` (argv starts at SUB).  to_url is --to for copy.
 * Returns the process exit status: 0 done, 1 failed, 2 usage error. */
int souk__cli_db(int argc, char **argv, const char *to_url);

#endif
