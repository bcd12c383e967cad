/*
 * net.c - see net.h.
 */
#define _GNU_SOURCE
#include "net.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

sm_err_t sm_net_listen(const char *host, int port, int backlog, int *fd_out, int *port_out)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *h = (host && *host) ? host : NULL;
    int rc = getaddrinfo(h, portstr, &hints, &res);
    if (rc != 0) {
        SM_ERROR("net", "cannot resolve listener host '%s': %s", host ? host : "", gai_strerror(rc));
        return SM_ERR_INVALID;
    }
    int fd = -1;
    sm_err_t err = SM_ERR_IO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
            err = SM_OK;
            break;
        }
        SM_ERROR("net", "cannot listen on %s:%d: %s", host ? host : "*", port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (err)
        return err;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (port_out)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return SM_OK;
}

sm_err_t sm_net_accept(int lfd, int *fd_out, char *peer, size_t peerlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            return SM_ERR_AGAIN;
        SM_WARN("net", "accept: %s", strerror(errno));
        return SM_ERR_IO;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    snprintf(peer, peerlen, "%s:%d", ip, port);
    *fd_out = fd;
    return SM_OK;
}

void sm_net_set_buffers(int fd, int sndbuf, int rcvbuf)
{
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
        SM_WARN("net", "SO_SNDBUF %d: %s", sndbuf, strerror(errno));
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)
        SM_WARN("net", "SO_RCVBUF %d: %s", rcvbuf, strerror(errno));
}

sm_err_t sm_net_connect(const char *host, int port, int *fd_out)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        SM_WARN("net", "cannot resolve %s: %s", host, gai_strerror(rc));
        return SM_ERR_INVALID;
    }
    sm_err_t err = SM_ERR_IO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            *fd_out = fd;
            err = SM_OK;
            break;
        }
        if (errno == EINPROGRESS) {
            *fd_out = fd;
            err = SM_ERR_AGAIN;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return err;
}
