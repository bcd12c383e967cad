/*
 * conn.h - one client connection: framing, in-order responses, zero-copy
 * sends. A connection belongs to one event loop and is only touched on that
 * loop's thread; requests parked elsewhere come back via sm_loop_post.
 */
#ifndef SM_CONN_H
#define SM_CONN_H

#include "loop.h"
#include "request.h"

/* Take ownership of an accepted socket and serve it on loop l. Loop thread of l. */
void sm_conn_start(sm_server_t *srv, sm_loop_t *l, int fd, const char *peer,
                   const char *listener, bool controller);

/* Open connections and requests not yet answered (all loops). Any thread. */
int sm_conn_count(sm_server_t *srv);
int sm_conn_inflight(sm_server_t *srv);

/* Answer every fetch parked (long poll) on loop l at once. Called when the
 * loop is torn down at shutdown, on the tearing-down thread after the loop
 * stopped, so no request outlives its loop. Implemented in handle_fetch.c. */
void sm_fetch_loop_drain(sm_server_t *srv, sm_loop_t *l);

#endif
