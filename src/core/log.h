/*
 * log.h - leveled, subsystem-tagged logging to stderr.
 *
 * Lines look like:  2026-11-22T02:10:00.123Z INFO  [storage] orders-0: rolled segment at offset 1200
 * Name the object (topic-partition, offset, epoch, peer) in the message.
 * Thread-safe: one write(2) per line.
 */
#ifndef SM_LOG_H
#define SM_LOG_H

typedef enum sm_log_level {
    SM_LOG_TRACE = 0,
    SM_LOG_DEBUG,
    SM_LOG_INFO,
    SM_LOG_WARN,
    SM_LOG_ERROR,
} sm_log_level_t;

/* Set the minimum level printed (default INFO; env SAMSA_LOG_LEVEL=debug etc). */
void sm_log_set_level(sm_log_level_t level);
sm_log_level_t sm_log_get_level(void);
/* Parse "trace|debug|info|warn|error"; returns -1 if unknown. */
int sm_log_level_parse(const char *s);

void sm_log_write(sm_log_level_t level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sm_log(level, tag, ...)                                                \
    do {                                                                       \
        if ((level) >= sm_log_get_level())                                     \
            sm_log_write((level), (tag), __VA_ARGS__);                         \
    } while (0)
#define SM_TRACE(tag, ...) sm_log(SM_LOG_TRACE, tag, __VA_ARGS__)
#define SM_DEBUG(tag, ...) sm_log(SM_LOG_DEBUG, tag, __VA_ARGS__)
#define SM_INFO(tag, ...) sm_log(SM_LOG_INFO, tag, __VA_ARGS__)
#define SM_WARN(tag, ...) sm_log(SM_LOG_WARN, tag, __VA_ARGS__)
#define SM_ERROR(tag, ...) sm_log(SM_LOG_ERROR, tag, __VA_ARGS__)

#endif
