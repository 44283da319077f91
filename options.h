/*
 * options.h - the command line: memcached 1.6's options (short and long
 * forms, -o extended keys) plus replication's -x/-X/-q, parsed into
 * `settings` (memcached.h).
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include "memcached.h"

/* Fill settings with memcached's defaults. */
void options_defaults(void);

/* Parse argv into settings and check the combination.  -h, -V and -i print
 * and exit 0; any bad option or value prints one line on stderr and exits
 * 1.  Options that are accepted but change nothing in this server are
 * reported under -v. */
void options_parse(int argc, char **argv);

/* The name of a -B protocol setting as memcached prints it ("ascii",
 * "binary", "auto-negotiate"), for stats settings and -vv. */
const char *options_protocol_name(enum protocol p);

#endif /* OPTIONS_H */
