/*
 * net.h - TCP listening and accepting (non-blocking, close-on-exec,
 * TCP_NODELAY). Part of the OS seam; any thread.
 */
#ifndef SM_NET_H
#define SM_NET_H

#include "sm_common.h"

/* Listen on host:port ("0.0.0.0" or "" = any). *port_out gets the bound port
 * (useful with port 0). */
sm_err_t sm_net_listen(const char *host, int port, int backlog, int *fd_out, int *port_out) SM_MUST_CHECK;
/* Accept one connection; SM_ERR_AGAIN when none is pending. peer gets "ip:port". */
sm_err_t sm_net_accept(int lfd, int *fd_out, char *peer, size_t peerlen) SM_MUST_CHECK;

/* SO_SNDBUF / SO_RCVBUF of a socket; a value <= 0 leaves that one to the OS
 * (which then tunes it as the connection goes). */
void sm_net_set_buffers(int fd, int sndbuf, int rcvbuf);
/* Start a non-blocking TCP connection to host:port (TCP_NODELAY set).
 * SM_OK: connected at once; SM_ERR_AGAIN: in progress (wait for EPOLLOUT,
 * then read SO_ERROR); *fd_out is set in both cases. Any other error: no
 * socket (a name that does not resolve, no address that takes a socket).
 * The name lookup blocks: pass numeric addresses on event loops. */
sm_err_t sm_net_connect(const char *host, int port, int *fd_out) SM_MUST_CHECK;

#endif
