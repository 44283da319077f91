/*
 * proto_meta.h - memcached's meta commands (mg ms md ma mn me), run from
 * the text protocol's command table (proto_text.c) on the same
 * connections as the classic commands.
 */
#ifndef PROTO_META_H
#define PROTO_META_H

#include <stddef.h>

#include "proto_text.h"

struct conn;

/* Which meta command a command table entry runs. */
enum meta_command {
    META_MG = 1,
    META_MS,
    META_MD,
    META_MA,
    META_MN,
    META_ME,
};

/* Run meta command cmd (an enum meta_command) whose key and flags are
 * [rest, end) of its line: the line has been consumed and may be
 * modified.  An ms leaves the connection reading its value
 * (PROTO_NREAD) or discarding it after an error (PROTO_SWALLOW). */
enum proto_next proto_meta_command(struct conn *c, char *rest, char *end,
                                   int cmd);

/* The value of the ms in c->text.meta has been read in full: check its
 * terminator, store it, queue the answer. */
enum proto_next proto_meta_value_read(struct conn *c);

/* The connection is going away: drop a pending ms's item, if any. */
void proto_meta_abort(struct conn *c);

/* Base64 (RFC 4648, padded) of n bytes at in, written at out; returns the
 * end.  out needs room for 4 * ((n + 2) / 3) bytes. */
char *proto_meta_base64(char *out, const unsigned char *in, size_t n);

#endif /* PROTO_META_H */
