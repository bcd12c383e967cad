/*
 * util.c - error reporting, strict value parsing (numbers, durations,
 * datetimes, sizes) and the option cursor used by every samsa command.
 *
 * Parsing is strict on purpose: "-p 3x" is a usage error, not 3, because an
 * operator's typo must never turn into a different action. Main thread only.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cli_globals_t cli_g;

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("samsa: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_FAIL;
}

int cli_usage_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("samsa: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'samsa %s%s--help')\n", cmd ? cmd : "", cmd && *cmd ? " " : "");
    va_end(ap);
    return CLI_EXIT_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("samsa: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_debug(const char *fmt, ...)
{
    if (!cli_g.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("samsa: debug: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_is_help(const char *s)
{
    return s && (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0 || strcmp(s, "help") == 0);
}

int cli_noun_start(const char *noun, void (*usage)(FILE *), int argc, char **argv)
{
    if (argc < 1) {
        usage(stderr);
        return cli_usage_fail(noun, "a verb is required");
    }
    if (cli_is_help(argv[0])) {
        usage(stdout);
        return 0;
    }
    return -1;
}

void cli_verb_help(FILE *f, void (*usage)(FILE *), const char *cmd)
{
    const char *sp = strchr(cmd, ' ');
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!sp || !m) {
        if (m)
            fclose(m);
        free(text);
        usage(f);
        return;
    }
    usage(m);
    fclose(m);
    const char *verb = sp + 1;
    size_t vlen = strlen(verb);
    int noun_len = (int)(sp - cmd);
    bool in = false, any = false;
    /* A verb's block: "  VERB ..." then lines indented deeper than 2. */
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        bool top = line[0] == ' ' && line[1] == ' ' && line[2] && line[2] != ' ';
        if (top && strncmp(line + 2, verb, vlen) == 0 &&
            (line[2 + vlen] == ' ' || line[2 + vlen] == 0)) {
            fprintf(f, "%s samsa %.*s %s\n", any ? "      " : "usage:", noun_len, cmd,
                    line + 2);
            in = any = true;
        } else if (in && !top && line[0] == ' ') {
            fprintf(f, "%s\n", line);
        } else {
            in = false;
        }
    }
    free(text);
    if (!any)
        usage(f);
}

int cli_verb_no_args(const char *cmd, void (*usage)(FILE *), int argc, char **argv)
{
    if (argc <= 1)
        return -1;
    if (cli_is_help(argv[1])) {
        cli_verb_help(stdout, usage, cmd);
        return 0;
    }
    return cli_usage_fail(cmd, "unexpected argument '%s'", argv[1]);
}

bool cli_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool cli_parse_i32(const char *s, int32_t lo, int32_t hi, int32_t *out)
{
    int64_t v;
    if (!cli_parse_i64(s, &v) || v < lo || v > hi)
        return false;
    *out = (int32_t)v;
    return true;
}

bool cli_parse_duration_ms(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || v < 0)
        return false;
    double mult;
    if (*end == 0 || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return false;
    double ms = v * mult;
    if (ms > 9e18)
        return false;
    *out = (int64_t)ms * (neg ? -1 : 1);
    return true;
}

/* Read exactly n digits at *p into *v. */
static bool digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return true;
}

bool cli_parse_datetime_ms(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    int64_t plain;
    if (cli_parse_i64(s, &plain)) {
        *out = plain;
        return plain >= 0;
    }
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return false;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return false;
            if (*p == '.') {
                p++;
                int n = 0, scale = 100;
                while (isdigit((unsigned char)*p)) {
                    if (n++ < 3) {
                        ms += (*p - '0') * scale;
                        scale /= 10;
                    }
                    p++;
                }
                if (n == 0)
                    return false;
            }
        }
    }
    int tz_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, th, tm = 0;
        if (!digits(&p, 2, &th))
            return false;
        if (*p == ':')
            p++;
        if (*p && !digits(&p, 2, &tm))
            return false;
        tz_min = sign * (th * 60 + tm);
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out = ((int64_t)t - (int64_t)tz_min * 60) * 1000 + ms;
    return true;
}

bool cli_parse_size(const char *s, int64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno)
        return false;
    double mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024.0;
    else if (*end == 'm' || *end == 'M')
        mult = 1024.0 * 1024;
    else if (*end == 'g' || *end == 'G')
        mult = 1024.0 * 1024 * 1024;
    if (mult != 1) {
        end++;
        if (*end == 'B' || *end == 'b')
            end++;
    } else if (*end == 'B' || *end == 'b') {
        end++;
    }
    if (*end || v * mult > 9e18)
        return false;
    *out = (int64_t)(v * mult);
    return true;
}

bool cli_split_kv(char *s, char **key, char **value)
{
    char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return false;
    *eq = 0;
    *key = s;
    *value = eq + 1;
    return true;
}

const char *cli_fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms < 0) {
        snprintf(buf, len, "%lld", (long long)ms);
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
    return buf;
}

/* ---------------------------------------------------------------- getopt */

void cli_args_init(cli_args_t *a, const char *cmd, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
}

int cli_getopt(cli_args_t *a, const cli_opt_t *opts)
{
    if (a->i >= a->argc)
        return -1;
    char *s = a->argv[a->i++];
    a->arg = NULL;
    if (a->dashdash || s[0] != '-' || s[1] == 0) {
        a->arg = s;
        return 0;
    }
    if (strcmp(s, "--") == 0) {
        a->dashdash = true;
        return cli_getopt(a, opts);
    }
    if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0)
        return 'h';
    const cli_opt_t *o = NULL;
    const char *inline_arg = NULL;
    if (s[1] == '-') {
        const char *name = s + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        for (const cli_opt_t *it = opts; it && (it->name || it->val); it++)
            if (it->name && strlen(it->name) == nlen && strncmp(it->name, name, nlen) == 0)
                o = it;
        if (eq)
            inline_arg = eq + 1;
        if (o && !o->has_arg && eq) {
            cli_usage_fail(a->cmd, "option --%s takes no value", o->name);
            return '?';
        }
    } else {
        for (const cli_opt_t *it = opts; it && (it->name || it->val); it++)
            if (it->val == (unsigned char)s[1])
                o = it;
        if (o && s[2]) {
            if (!o->has_arg) {
                cli_usage_fail(a->cmd, "unknown option '%s'", s);
                return '?';
            }
            inline_arg = s + 2;
        }
    }
    if (!o) {
        cli_usage_fail(a->cmd, "unknown option '%s'", s);
        return '?';
    }
    if (o->has_arg) {
        if (inline_arg) {
            a->arg = inline_arg;
        } else if (a->i < a->argc) {
            a->arg = a->argv[a->i++];
        } else {
            cli_usage_fail(a->cmd, "option '%s' needs a value", s);
            return '?';
        }
    }
    return o->val;
}
