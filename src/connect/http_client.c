/*
 * http_client.c - the few HTTP/1.1 requests one worker sends to another: REST
 * writes forwarded to the group leader, task restarts to the task's owner (as
 * Kafka's distributed workers forward them).
 *
 * One request per connection ("Connection: close"), the answer read until the peer
 * closes (libmicrohttpd answers with Content-Length, never chunked for our
 * buffers). Bounded: 60 s per request, answers up to 16 MiB. The forwarded request
 * carries "X-Samsa-Forwarded: 1" so a worker that also thinks it is not the leader
 * answers 409 instead of forwarding in a loop. Any thread (blocking).
 */
#define _GNU_SOURCE
#include "cn.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CN_HTTP_TIMEOUT_MS 60000
#define CN_HTTP_MAX_RESPONSE (16u << 20)

int cn_dial(const char *host, const char *port, int timeout_ms, bool recv_timeout, char *err,
            size_t len)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        snprintf(err, len, "%s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        if (recv_timeout)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        snprintf(err, len, "%s:%s: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int cn_http_forward(const char *base, const char *method, const char *path_and_query, const char *body,
                    size_t body_len, char **resp_body, char *err, size_t err_len)
{
    *resp_body = NULL;
    if (strncmp(base, "http://", 7) != 0) {
        snprintf(err, err_len, "cannot forward to '%s'", base);
        return -1;
    }
    char host[300], port[16] = "80";
    snprintf(host, sizeof host, "%s", base + 7);
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (colon) {
        if (*colon == ']')
            *colon++ = 0;
        *colon = 0;
        snprintf(port, sizeof port, "%s", colon + 1);
    }
    const char *h = host[0] == '[' ? host + 1 : host;
    int fd = cn_dial(h, port, CN_HTTP_TIMEOUT_MS, true, err, err_len);
    if (fd < 0)
        return -1;
    char *head = NULL;
    int hl = asprintf(&head,
                      "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\nX-Samsa-Forwarded: 1\r\n"
                      "Accept: application/json\r\n%sContent-Length: %zu\r\n\r\n",
                      method, path_and_query, h, port, body ? "Content-Type: application/json\r\n" : "",
                      body ? body_len : 0);
    if (hl < 0)
        abort();
    bool ok = send(fd, head, (size_t)hl, MSG_NOSIGNAL) == hl;
    free(head);
    for (size_t off = 0; ok && body && off < body_len;) {
        ssize_t k = send(fd, body + off, body_len - off, MSG_NOSIGNAL);
        if (k <= 0)
            ok = false;
        else
            off += (size_t)k;
    }
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        abort();
    while (ok) {
        if (n == cap) {
            if (cap >= CN_HTTP_MAX_RESPONSE) {
                ok = false;
                break;
            }
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (!buf)
                abort();
        }
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            ok = false;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = 0;
    int status = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (!ok || !sep || sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status < 100) {
        snprintf(err, err_len, "no valid answer from %s", base);
        free(buf);
        return -1;
    }
    sep += 4;
    if (*sep)
        *resp_body = strdup(sep);
    free(buf);
    return status;
}
