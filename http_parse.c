/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * http_parse.c - strict parsing of backend responses (RFC 9112).
 *
 * Owns: response status line and header fields, body framing decisions,
 * and the chunked transfer-coding decoder. Everything here reads bytes a
 * backend chose, so every length is bounded and every character checked;
 * anything ambiguous is refused (the caller answers 502) rather than
 * guessed at, because a guess is how response splitting starts.
 *
 * Does not own: I/O (backend.c), header policy such as hop-by-hop
 * removal (headers.c). No state outside the structures passed in; no
 * locks; allocations only in the caller's pool.
 */

#include <apr_strings.h>
#include <apr_lib.h>

#include "http_parse.h"

#define RC_CHUNK_LINE_MAX    8192
#define RC_CHUNK_TRAILER_MAX 8192

/* Character classes, one table lookup per byte on the hot path:
 * C_TCHAR   RFC 9110 tchar, allowed in a field name
 * C_VALUE   allowed in a field value: VCHAR, SP, HTAB and obs-text */
#define C_TCHAR 1
#define C_VALUE 2

static unsigned char char_class[256];

static void init_classes(void)
{
    static volatile int done;
    const char *extra = "!#$%&'*+-.^_`|~";
    int c;

    if (done) {
        return;
    }
    for (c = 0; c < 256; c++) {
        unsigned char k = 0;

        if (apr_isalnum(c) || (c && strchr(extra, c))) {
            k |= C_TCHAR;
        }
        if ((c >= 0x20 && c != 0x7f) || c == '\t') {
            k |= C_VALUE;
        }
        char_class[c] = k;
    }
    done = 1;     /* idempotent: racing threads write the same bytes */
}

apr_size_t rc_http_head_end(const char *buf, apr_size_t len)
{
    const char *p = buf, *end = buf + len;

    /* An empty line is "\n" right after a "\n", with an optional "\r". */
    while ((p = memchr(p, '\n', end - p)) != NULL) {
        p++;
        if (p < end && *p == '\n') {
            return (apr_size_t)(p + 1 - buf);
        }
        if (p + 1 < end && p[0] == '\r' && p[1] == '\n') {
            return (apr_size_t)(p + 2 - buf);
        }
    }
    return 0;
}

/* Returns the length of the line at buf (without its terminator) and
 * sets *next to the start of the following line; -1 on a bare CR. */
static apr_ssize_t line_at(const char *buf, apr_size_t len, apr_size_t *next)
{
    const char *nl = memchr(buf, '\n', len);
    apr_size_t i;

    if (!nl) {
        *next = len;
        return (apr_ssize_t)len;
    }
    i = (apr_size_t)(nl - buf);
    *next = i + 1;
    return (apr_ssize_t)(i > 0 && buf[i - 1] == '\r' ? i - 1 : i);
}

static apr_status_t parse_status_line(apr_pool_t *p, const char *s,
                                      apr_size_t n, rc_resp_head_t *head,
                                      const char **err)
{
    apr_size_t i;

    /* HTTP/1.x SP 3DIGIT SP reason */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0
        || (s[7] != '0' && s[7] != '1') || s[8] != ' ') {
        *err = "bad status line";
        return APR_EGENERAL;
    }
    head->version = s[7] == '1' ? 11 : 10;
    if (!apr_isdigit(s[9]) || !apr_isdigit(s[10]) || !apr_isdigit(s[11])
        || (n > 12 && s[12] != ' ')) {
        *err = "bad status code";
        return APR_EGENERAL;
    }
    head->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (head->status < 100 || head->status > 599) {
        *err = "status code out of range";
        return APR_EGENERAL;
    }
    for (i = 13; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *err = "control character in reason phrase";
            return APR_EGENERAL;
        }
    }
    head->reason = n > 13 ? apr_pstrmemdup(p, s + 13, n - 13) : "";
    return APR_SUCCESS;
}

/* Parses one field line s[0..n) (no line terminator, no CR inside) and
 * notes the framing fields on the way. */
static apr_status_t parse_field(apr_pool_t *p, const char *s, apr_size_t n,
                                rc_resp_head_t *head, const char **err)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t colon, vs, ve, i;
    const char *name, *value;

    for (colon = 0; colon < n && (char_class[u[colon]] & C_TCHAR);
         colon++) {
    }
    if (colon == n || s[colon] != ':' || colon == 0) {
        /* Also catches obs-fold: a line starting with SP or HTAB. */
        *err = colon < n && s[colon] != ':'
               ? "bad character in header field name"
               : "header line without a field name and colon";
        return APR_EGENERAL;
    }
    vs = colon + 1;
    while (vs < n && (s[vs] == ' ' || s[vs] == '\t')) {
        vs++;
    }
    for (i = vs; i < n; i++) {
        if (!(char_class[u[i]] & C_VALUE)) {
            *err = "control character in header field value";
            return APR_EGENERAL;
        }
    }
    for (ve = n; ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'); ve--) {
    }
    name = apr_pstrmemdup(p, s, colon);
    value = apr_pstrmemdup(p, s + vs, ve - vs);
    apr_table_addn(head->headers, name, value);
    if (colon == 14 && !strcasecmp(name, "Content-Length")) {
        if (head->content_length && strcmp(head->content_length, value)) {
            head->cl_conflict = 1;
        }
        head->content_length = value;
    }
    else if (colon == 17 && !strcasecmp(name, "Transfer-Encoding")) {
        head->te_fields++;
        head->transfer_encoding = value;
    }
    return APR_SUCCESS;
}

apr_status_t rc_http_parse_head(apr_pool_t *p, const char *buf,
                                apr_size_t len,
                                const rc_http_limits_t *limits,
                                rc_resp_head_t *head, const char **err)
{
    apr_size_t pos = 0, next;
    apr_ssize_t n;
    int fields = 0;
    apr_status_t rv;

    init_classes();
    if (len > limits->max_head_bytes) {
        *err = "response head too large";
        return APR_EGENERAL;
    }
    head->content_length = head->transfer_encoding = NULL;
    head->te_fields = head->cl_conflict = 0;
    n = line_at(buf, len, &next);
    if ((rv = parse_status_line(p, buf, (apr_size_t)n, head, err))) {
        return rv;
    }
    head->headers = apr_table_make(p, 16);
    for (pos = next; pos < len; pos = next) {
        n = line_at(buf + pos, len - pos, &next);
        next += pos;
        if (n == 0) {
            return APR_SUCCESS;       /* the empty line ends the head */
        }
        if (++fields > limits->max_fields) {
            *err = "too many header fields";
            return APR_EGENERAL;
        }
        if ((rv = parse_field(p, buf + pos, (apr_size_t)n, head, err))) {
            return rv;
        }
    }
    *err = "response head not terminated";
    return APR_EGENERAL;
}

int rc_http_parse_length(const char *value, apr_off_t *length)
{
    apr_off_t first = -1;
    const char *s = value;

    /* A list of identical values ("42, 42") is one length (RFC 9110
     * section 8.6); anything else is a lie we refuse. */
    for (;;) {
        apr_off_t v = 0;
        int digits = 0;

        while (*s == ' ' || *s == '\t') {
            s++;
        }
        while (apr_isdigit(*s)) {
            if (v > (APR_INT64_MAX - 9) / 10) {
                return -1;
            }
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (!digits || (first >= 0 && v != first)) {
            return -1;
        }
        first = v;
        if (*s == '\0') {
            break;
        }
        if (*s++ != ',') {
            return -1;
        }
    }
    *length = first;
    return 0;
}

typedef struct {
    const char *te;
    const char *cl;
    int cl_conflict;
} framing_fields_t;

apr_status_t rc_http_body_framing(const rc_resp_head_t *head,
                                  int head_request, rc_body_kind_e *kind,
                                  apr_off_t *length, const char **err)
{
    /* Noted by the parser: no second walk over the fields. */
    framing_fields_t ff;

    ff.te = head->te_fields > 1 ? "" : head->transfer_encoding;
    ff.cl = head->content_length;
    ff.cl_conflict = head->cl_conflict;
    *length = -1;
    if (ff.te && ff.cl) {
        *err = "both Transfer-Encoding and Content-Length";
        return APR_EGENERAL;
    }
    if (ff.cl_conflict) {
        *err = "conflicting Content-Length fields";
        return APR_EGENERAL;
    }
    if (ff.cl && rc_http_parse_length(ff.cl, length) != 0) {
        *err = "malformed Content-Length";
        return APR_EGENERAL;
    }
    if (ff.te) {
        /* We decode chunked only; any other coding would need decoding
         * we do not do, and passing it on would corrupt the body. */
        if (strcasecmp(ff.te, "chunked") != 0) {
            *err = "unsupported Transfer-Encoding";
            return APR_EGENERAL;
        }
        if (head->version < 11) {
            *err = "Transfer-Encoding in an HTTP/1.0 response";
            return APR_EGENERAL;
        }
    }
    if (head_request || head->status < 200 || head->status == 204
        || head->status == 304) {
        *kind = RC_BODY_NONE;
    }
    else if (ff.te) {
        *kind = RC_BODY_CHUNKED;
    }
    else if (ff.cl) {
        *kind = *length ? RC_BODY_LENGTH : RC_BODY_NONE;
    }
    else {
        *kind = RC_BODY_CLOSE;
    }
    return APR_SUCCESS;
}

/* Decoder states. */
enum {
    CH_SIZE = 0,     /* reading hex digits of a chunk size */
    CH_EXT,          /* skipping chunk extensions to the end of line */
    CH_SIZE_LF,      /* after the CR that ends a chunk-size line */
    CH_SIZE_WS,      /* whitespace after the size: only ';' or EOL next */
    CH_DATA,         /* inside chunk data */
    CH_DATA_CR,      /* expecting CR (or LF) after chunk data */
    CH_DATA_LF,      /* expecting LF after chunk data */
    CH_TRAILER,      /* at the start of a trailer line (or the end) */
    CH_TRAILER_LINE, /* inside a trailer line */
    CH_LAST_LF,      /* after CR of the final empty line */
    CH_DONE
};

void rc_chunk_init(rc_chunk_t *ch)
{
    memset(ch, 0, sizeof(*ch));
}

int rc_chunk_done(const rc_chunk_t *ch)
{
    return ch->state == CH_DONE;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Ends a chunk-size line: the next state is data, or trailers after the
 * last (zero-size) chunk. */
static apr_status_t end_size_line(rc_chunk_t *ch, const char **err)
{
    if (!ch->digits) {
        *err = "chunk size missing";
        return APR_EGENERAL;
    }
    ch->line_bytes = 0;
    ch->state = ch->remaining ? CH_DATA : CH_TRAILER;
    return APR_SUCCESS;
}

apr_status_t rc_chunk_decode(rc_chunk_t *ch, const char *in,
                             apr_size_t in_len, apr_size_t *consumed,
                             const char **data, apr_size_t *data_len,
                             const char **err)
{
    apr_size_t i = 0;

    *data = NULL;
    *data_len = 0;
    while (i < in_len && ch->state != CH_DONE) {
        unsigned char c = (unsigned char)in[i];

        switch (ch->state) {
        case CH_SIZE: {
            int h = hexval(c);
            if (++ch->line_bytes > RC_CHUNK_LINE_MAX) {
                *err = "chunk size line too long";
                return APR_EGENERAL;
            }
            if (h >= 0) {
                if (ch->remaining > (APR_INT64_MAX >> 5)) {
                    *err = "chunk size too large";
                    return APR_EGENERAL;
                }
                ch->remaining = ch->remaining * 16 + h;
                ch->digits++;
            }
            else if (c == ';') {
                ch->state = CH_EXT;
            }
            else if (c == ' ' || c == '\t') {
                ch->state = CH_SIZE_WS;
            }
            else if (c == '\r') {
                ch->state = CH_SIZE_LF;
            }
            else if (c == '\n') {
                if (end_size_line(ch, err)) {
                    return APR_EGENERAL;
                }
            }
            else {
                *err = "bad character in chunk size";
                return APR_EGENERAL;
            }
            i++;
            break;
        }
        case CH_EXT:
            if (c == '\r') {
                ch->state = CH_SIZE_LF;
            }
            else if (c == '\n') {
                if (end_size_line(ch, err)) {
                    return APR_EGENERAL;
                }
            }
            else if (++ch->line_bytes > RC_CHUNK_LINE_MAX) {
                *err = "chunk extension too long";
                return APR_EGENERAL;
            }
            else if ((c < 0x20 && c != '\t') || c == 0x7f) {
                *err = "control character in chunk extension";
                return APR_EGENERAL;
            }
            i++;
            break;
        case CH_SIZE_WS:
            /* RFC 9112 7.1.1: BWS may precede ";" of an extension; "5 6"
             * or "5 junk" is not a size and would be read differently by
             * another parser. */
            if (++ch->line_bytes > RC_CHUNK_LINE_MAX) {
                *err = "chunk size line too long";
                return APR_EGENERAL;
            }
            if (c == ';') {
                ch->state = CH_EXT;
            }
            else if (c == '\r') {
                ch->state = CH_SIZE_LF;
            }
            else if (c == '\n') {
                if (end_size_line(ch, err)) {
                    return APR_EGENERAL;
                }
            }
            else if (c != ' ' && c != '\t') {
                *err = "bad character after chunk size";
                return APR_EGENERAL;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n' || end_size_line(ch, err)) {
                *err = c != '\n' ? "bare CR in chunk size line" : *err;
                return APR_EGENERAL;
            }
            i++;
            break;
        case CH_DATA: {
            apr_size_t n = in_len - i;
            if ((apr_off_t)n > ch->remaining) {
                n = (apr_size_t)ch->remaining;
            }
            ch->remaining -= n;
            if (!ch->remaining) {
                ch->state = CH_DATA_CR;
            }
            *data = in + i;
            *data_len = n;
            *consumed = i + n;
            return APR_SUCCESS;
        }
        case CH_DATA_CR:
            if (c == '\r') {
                ch->state = CH_DATA_LF;
            }
            else if (c == '\n') {
                ch->state = CH_SIZE;
                ch->digits = 0;
            }
            else {
                *err = "missing CRLF after chunk data";
                return APR_EGENERAL;
            }
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n') {
                *err = "missing LF after chunk data";
                return APR_EGENERAL;
            }
            ch->state = CH_SIZE;
            ch->digits = 0;
            i++;
            break;
        case CH_TRAILER:
            if (c == '\n') {
                ch->state = CH_DONE;
            }
            else if (c == '\r') {
                ch->state = CH_LAST_LF;
            }
            else {
                ch->state = CH_TRAILER_LINE;
            }
            if (++ch->trailer_bytes > RC_CHUNK_TRAILER_MAX) {
                *err = "trailer section too long";
                return APR_EGENERAL;
            }
            i++;
            break;
        case CH_TRAILER_LINE:
            if (c == '\n') {
                ch->state = CH_TRAILER;
            }
            if (++ch->trailer_bytes > RC_CHUNK_TRAILER_MAX) {
                *err = "trailer section too long";
                return APR_EGENERAL;
            }
            i++;
            break;
        case CH_LAST_LF:
            if (c != '\n') {
                *err = "bad end of chunked body";
                return APR_EGENERAL;
            }
            ch->state = CH_DONE;
            i++;
            break;
        }
    }
    *consumed = i;
    return APR_SUCCESS;
}
