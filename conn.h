/*
 * conn.h - client connections: the per-connection state machine, buffered
 * reads, batched writes, and the TCP / UNIX / UDP transports.
 */
#ifndef CONN_H
#define CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

/* Connection gauges for the general "stats" report. */
struct conn_totals {
    uint64_t curr_connections;
    uint64_t total_connections;
    uint64_t rejected_connections;
    uint64_t connection_structures;
    uint64_t listen_disabled_num;
    uint64_t time_in_listen_disabled_us;
    bool accepting_conns;
    uint32_t reserved_fds;
    uint64_t response_obj_count;
    uint64_t response_obj_bytes;
    uint64_t read_buf_count;
    uint64_t read_buf_bytes;
    uint64_t read_buf_bytes_free;
};
void conn_get_totals(struct conn_totals *out);

/* "stats conns": per connection lines, through add. */
void conn_report(add_stat_fn add, void *ctx);

#endif /* CONN_H */
