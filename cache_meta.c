/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * cache_meta.c -- the metadata blob of a cached entry: encoding and
 * strict decoding.  APR only (unit-tested without httpd).
 *
 * OWNS: the byte format of the "meta" blob that cache_mem.c stores
 * opaquely beside each body.  It does not own what goes in it (the glue,
 * cache.c / cache_fetch.c, picks the fields with cache_rules.c), nor the
 * store.  No locks, no shared memory: the encoder writes into a request
 * pool, the decoder reads a private copy (rc_cache_hit_meta) and builds
 * its result in a request pool.
 *
 * WHY COMPACT: an entry is one chain of 256-byte blocks holding
 * key | variant | tags | meta | body, so every byte of meta can cost a
 * block.  The 1 KiB response of the benchmark (nginx, 7 stored fields)
 * took 291 bytes in the previous format (a 72-byte fixed header of
 * 32-bit fields and a padded rc_fresh_t, then NUL-ended strings), which
 * with a ~54-byte key spilled into a sixth block.  This format takes 127.
 *
 * FORMAT (varint = LEB128, 7 bits a byte, least significant first, at
 * most 10 bytes, no redundant trailing zero bytes; zvarint = varint of
 * the zigzag mapping 0,-1,1,-2.. -> 0,1,2,3..):
 *
 *   RESPONSE                       VARY
 *   u8      0xA1 (format byte)     u8      0xA2
 *   varint  status (200..999)      varint  n, then n bytes: the spec
 *                                  PASS (hit-for-miss marker)
 *                                  u8      0xA3, nothing else
 *   varint  status line:
 *             0      none (httpd's own reason phrase)
 *             2n+1   "<status> " followed by the n bytes that follow
 *             2n     the n (> 0) bytes that follow, as they are
 *   u8      secs: bit i set = fresh value i is in whole seconds
 *   varint  rc_fresh_t.flags
 *   zvarint response_time, date, corrected_initial_age, lifetime, swr,
 *           sie (microseconds; seconds where the secs bit says so, which
 *           the encoder uses exactly when the value is a whole second)
 *   varint  number of fields (<= RC_META_MAX_FIELDS)
 *   fields: u8 name: 1..NNAMES = names[] below (case-exact match only),
 *                    0 = varint n, then n bytes of the name as is
 *           varint value: 0 = an IMF-fixdate: varint seconds since 1970
 *                             (only when it formats back byte-exactly)
 *                         n+1 = n bytes of text follow
 *
 * Nothing follows the last field: a blob with bytes left over, a length
 * running past the end, an unknown name code, a NUL inside a string or a
 * date beyond 9999 is refused, and so is anything the encoder would have
 * written otherwise (a redundant varint byte, a whole second not flagged
 * as one, a literal name the table has, a text value that is a date it
 * would store as seconds, a literal status line starting "<status> "):
 * a blob is accepted only if encoding what it decodes to gives it back.
 * Strings are never stored with a NUL, so a decoded value is byte for
 * byte what was encoded: header values served from the cache are the
 * ones the backend sent.
 *
 * WORKED EXAMPLE: nginx's answer to GET /s/1k.bin, stored fields
 *     Server: nginx/1.22.1                   01 0d "nginx/1.22.1"    14
 *     Date: Thu, 26 Nov 2026 00:29:20 GMT    02 00 <5-byte varint>    7
 *     Content-Type: application/octet-stream 03 19 "applic..."       26
 *     Last-Modified: Thu, 26 Nov 2026 ...    04 00 <5 bytes>          7
 *     ETag: "6b077d55-400"                   05 0f "\"6b07...\""     16
 *     Cache-Control: public, max-age=3600    06 15 "public, ..."     22
 *     Accept-Ranges: bytes                   07 06 "bytes"            7
 * (Content-Length is never stored: a hit sets it from the body length)
 * 99 bytes, plus a1, c8 01 (200), 05 "OK" (status line "200 OK"), the
 * secs byte, flags (2 bytes), response_time (8), date (5), age 0 (1),
 * lifetime 3600 s (2), swr 0 (1), sie -1 (1), 07 (field count): 127 bytes
 * in all, of which the key (~54 bytes) leaves 75 to spare in the block.
 *
 * Changing the format or the name table means bumping RC_SEG_VERSION
 * (cache_mem_int.h), so that a segment kept across a graceful restart is
 * started afresh rather than read with the wrong codec.
 */

#include "cache_meta.h"

#include <apr_strings.h>
#include <apr_time.h>

#include <limits.h>
#include <string.h>

#define FMT_RESPONSE 0xA1
#define FMT_VARY     0xA2
#define FMT_PASS     0xA3
#define VARINT_MAX   10
#define NFRESH       6
/* 9999-12-31 23:59:59 GMT: the last second with a 4-digit year */
#define DATE_MAX     APR_INT64_C(253402300799)
#define DATE_LEN     29
#define USEC         APR_INT64_C(1000000)

/* Header names coded as one byte (index + 1), compared case-exactly:
 * the usual response fields in their usual spelling.  Append only (and
 * bump RC_SEG_VERSION); at most 255. */
static const char *const names[] = {
    "Server", "Date", "Content-Type", "Last-Modified", "ETag",
    "Cache-Control", "Accept-Ranges", "Expires", "Vary",
    "Content-Encoding", "Content-Language", "Content-Disposition",
    "Link", "Content-Location", "Location", "Content-Range",
    "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers", "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers", "Access-Control-Max-Age",
    "Strict-Transport-Security", "X-Content-Type-Options",
    "X-Frame-Options", "X-XSS-Protection", "Content-Security-Policy",
    "Referrer-Policy", "X-Powered-By", "Pragma", "Via",
    "Timing-Allow-Origin", "Permissions-Policy",
    "Cross-Origin-Resource-Policy", "Cross-Origin-Opener-Policy",
    "Cross-Origin-Embedder-Policy", "Alt-Svc", "X-Request-Id",
    "X-Cache", "Retry-After", "Warning", "Allow", "Surrogate-Control",
    "X-Robots-Tag", "Report-To", "NEL", "Server-Timing",
    "X-UA-Compatible", "Etag", "Content-Security-Policy-Report-Only",
    "X-Cache-Hits", "X-Served-By", "X-Timer", "X-Runtime",
    "X-AspNet-Version", "X-Generator",
};
#define NNAMES ((int)(sizeof(names) / sizeof(names[0])))
typedef char rc_meta_names_fit[NNAMES <= 255 ? 1 : -1];

static const char *const months[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* ------------------------------------------------------------------ */
/* Dates                                                               */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil).  Example: 1994-11-06 -> 9075. */
static apr_int64_t days_from_civil(int y, int m, int d)
{
    int era, yoe, doy, doe;

    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (apr_int64_t)era * 146097 + doe - 719468;
}

/* The inverse: 1970-01-01 + days -> y-m-d (Hinnant's civil_from_days),
 * for days >= 0.  Example: 9075 -> 1994-11-06. */
static void civil_from_days(apr_uint32_t z, int *y, int *m, int *d)
{
    apr_uint32_t era, doe, yoe, doy, mp;

    z += 719468;
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static void put2(char *o, int v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324"
        "25262728293031323334353637383940414243444546474849"
        "50515253545556575859606162636465666768697071727374"
        "75767778798081828384858687888990919293949596979899";

    memcpy(o, pairs + 2 * v, 2);
}

/* Seconds in [0, DATE_MAX] as an IMF-fixdate, 29 bytes + NUL: what
 * apr_rfc822_date writes (the unit tests compare them), without the
 * exploded-time detour on the hit path. */
static void date_format(char *o, apr_int64_t t)
{
    static const char wdays[] = "ThuFriSatSunMonTueWed";
    apr_uint32_t days = (apr_uint32_t)(t / 86400);   /* < 2,932,897 */
    int secs = (int)(t % 86400), y, m, d;

    civil_from_days(days, &y, &m, &d);
    memcpy(o, wdays + (days % 7) * 3, 3);
    memcpy(o + 3, ", ", 2);
    put2(o + 5, d);
    o[7] = ' ';
    memcpy(o + 8, months[m - 1], 3);
    o[11] = ' ';
    put2(o + 12, y / 100);
    put2(o + 14, y % 100);
    o[16] = ' ';
    put2(o + 17, secs / 3600);
    o[19] = ':';
    put2(o + 20, secs / 60 % 60);
    o[22] = ':';
    put2(o + 23, secs % 60);
    memcpy(o + 25, " GMT", 5);
}

/* "<status> " into pfx (16 bytes); returns its length. */
static int status_prefix(char *pfx, int status)
{
    if (status >= 100 && status <= 999) {
        pfx[0] = (char)('0' + status / 100);
        put2(pfx + 1, status % 100);
        pfx[3] = ' ';
        pfx[4] = '\0';
        return 4;
    }
    return apr_snprintf(pfx, 16, "%d ", status);
}

static int digits(const char *s, int n)
{
    int v = 0;

    while (n-- > 0) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        v = v * 10 + (*s++ - '0');
    }
    return v;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT": parsed, then formatted again and
 * compared, so only a date that comes back byte for byte is accepted
 * (that also checks the weekday and refuses "31 Feb"). */
int rc_meta_date_parse(const char *s, apr_size_t n, apr_int64_t *secs)
{
    char buf[DATE_LEN + 1];
    int day, mon, year, hh, mm, ss;
    apr_int64_t t;

    if (n != DATE_LEN || s[3] != ',' || s[4] != ' ' || s[7] != ' '
        || s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':'
        || memcmp(s + 25, " GMT", 4) != 0) {
        return 0;
    }
    day = digits(s + 5, 2);
    year = digits(s + 12, 4);
    hh = digits(s + 17, 2);
    mm = digits(s + 20, 2);
    ss = digits(s + 23, 2);
    for (mon = 0; mon < 12 && memcmp(s + 8, months[mon], 3) != 0; mon++) {
    }
    if (mon == 12 || day < 1 || day > 31 || year < 1970 || hh < 0
        || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 59) {
        return 0;
    }
    t = days_from_civil(year, mon + 1, day) * 86400
        + hh * 3600 + mm * 60 + ss;
    if (t < 0 || t > DATE_MAX) {
        return 0;
    }
    date_format(buf, t);
    if (memcmp(buf, s, DATE_LEN) != 0) {
        return 0;
    }
    *secs = t;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

static APR_INLINE apr_uint64_t zigzag(apr_int64_t v)
{
    return ((apr_uint64_t)v << 1) ^ (apr_uint64_t)(v >> 63);
}

static APR_INLINE apr_int64_t unzigzag(apr_uint64_t u)
{
    return (apr_int64_t)(u >> 1) ^ -(apr_int64_t)(u & 1);
}

static char *put_uv(char *o, apr_uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (char)(v | 0x80);
        v >>= 7;
    }
    *o++ = (char)v;
    return o;
}

static char *put_str(char *o, const char *s, apr_size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static int name_code(const char *k)
{
    int i;

    /* first letters differ a lot: a cheap pre-check before strcmp */
    for (i = 0; i < NNAMES; i++) {
        if (names[i][0] == k[0] && strcmp(names[i], k) == 0) {
            return i + 1;
        }
    }
    return 0;
}

const void *rc_meta_encode_response(apr_pool_t *p, int status,
                                    const char *status_line,
                                    const rc_fresh_t *f,
                                    const apr_table_t *headers,
                                    apr_size_t *len)
{
    const apr_array_header_t *arr = apr_table_elts(headers);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_int64_t fv[NFRESH];
    apr_size_t bound, sl = status_line ? strlen(status_line) : 0;
    apr_uint64_t nfields = 0;
    char pfx[16], *buf, *o;
    int i, plen, secs = 0;

    fv[0] = f->response_time;
    fv[1] = f->date;
    fv[2] = f->corrected_initial_age;
    fv[3] = f->lifetime;
    fv[4] = f->swr;
    fv[5] = f->sie;
    bound = 1 + 2 * VARINT_MAX + sl + 1 + (NFRESH + 2) * VARINT_MAX;
    for (i = 0; i < arr->nelts; i++) {
        if (e[i].key) {
            bound += 1 + 2 * VARINT_MAX + strlen(e[i].key)
                     + (e[i].val ? strlen(e[i].val) : 0);
            nfields++;
        }
    }
    o = buf = apr_palloc(p, bound);
    *o++ = (char)FMT_RESPONSE;
    o = put_uv(o, (apr_uint32_t)status);
    plen = status_prefix(pfx, status);
    if (sl == 0) {
        o = put_uv(o, 0);
    }
    else if (sl >= (apr_size_t)plen && memcmp(status_line, pfx, plen) == 0) {
        o = put_uv(o, ((apr_uint64_t)(sl - plen) << 1) | 1);
        o = put_str(o, status_line + plen, sl - plen);
    }
    else {
        o = put_uv(o, (apr_uint64_t)sl << 1);
        o = put_str(o, status_line, sl);
    }
    for (i = 0; i < NFRESH; i++) {
        if (fv[i] % USEC == 0) {
            secs |= 1 << i;
        }
    }
    *o++ = (char)secs;
    o = put_uv(o, f->flags);
    for (i = 0; i < NFRESH; i++) {
        o = put_uv(o, zigzag((secs & (1 << i)) ? fv[i] / USEC : fv[i]));
    }
    o = put_uv(o, nfields);
    for (i = 0; i < arr->nelts; i++) {
        const char *v = e[i].val ? e[i].val : "";
        apr_size_t vl = strlen(v);
        apr_int64_t t;
        int code;

        if (!e[i].key) {
            continue;
        }
        code = name_code(e[i].key);
        *o++ = (char)code;
        if (!code) {
            apr_size_t kl = strlen(e[i].key);

            o = put_uv(o, kl);
            o = put_str(o, e[i].key, kl);
        }
        if (rc_meta_date_parse(v, vl, &t)) {
            o = put_uv(o, 0);
            o = put_uv(o, (apr_uint64_t)t);
        }
        else {
            o = put_uv(o, (apr_uint64_t)vl + 1);
            o = put_str(o, v, vl);
        }
    }
    *len = (apr_size_t)(o - buf);
    return buf;
}

const void *rc_meta_encode_vary(apr_pool_t *p, const char *spec,
                                apr_size_t *len)
{
    apr_size_t n = strlen(spec);
    char *buf = apr_palloc(p, 1 + VARINT_MAX + n), *o = buf;

    *o++ = (char)FMT_VARY;
    o = put_uv(o, n);
    o = put_str(o, spec, n);
    *len = (apr_size_t)(o - buf);
    return buf;
}

const void *rc_meta_encode_pass(apr_pool_t *p, apr_size_t *len)
{
    char *buf = apr_palloc(p, 1);

    buf[0] = (char)FMT_PASS;
    *len = 1;
    return buf;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */

typedef struct {
    const unsigned char *s, *end;
    char                *out;     /* where the next string is copied */
} rd_t;

/* A canonical varint; 0 when truncated, too long or not canonical
 * (a zero last byte after others, bits beyond 64). */
static int get_uv_long(rd_t *r, apr_uint64_t *v)
{
    const unsigned char *s = r->s;
    const unsigned char *lim = r->end - s > VARINT_MAX ? s + VARINT_MAX
                                                       : r->end;
    apr_uint64_t x = 0;
    unsigned int shift = 0;
    unsigned char b;

    do {
        if (s == lim) {
            return 0;
        }
        b = *s++;
        x |= (apr_uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    /* the 10th byte holds bit 63 only; no redundant zero last byte */
    if ((shift == 7 * VARINT_MAX && b > 1) || (b == 0 && shift > 7)) {
        return 0;
    }
    r->s = s;
    *v = x;
    return 1;
}

static APR_INLINE int get_uv(rd_t *r, apr_uint64_t *v)
{
    if (r->s < r->end && *r->s < 0x80) {
        *v = *r->s++;
        return 1;
    }
    return get_uv_long(r, v);
}

/* n bytes of string (no NUL among them) copied out, after plen bytes
 * of prefix, and NUL-ended. */
static const char *get_str_pfx(rd_t *r, apr_uint64_t n, const char *prefix,
                               apr_size_t plen)
{
    char *s = r->out;

    if (n > (apr_uint64_t)(r->end - r->s) || memchr(r->s, '\0', n)) {
        return NULL;
    }
    memcpy(r->out, prefix, plen);
    memcpy(r->out + plen, r->s, n);
    r->out[plen + n] = '\0';
    r->out += plen + n + 1;
    r->s += n;
    return s;
}

static APR_INLINE const char *get_str(rd_t *r, apr_uint64_t n)
{
    char *s = r->out;

    if (n > (apr_uint64_t)(r->end - r->s) || memchr(r->s, '\0', n)) {
        return NULL;
    }
    memcpy(s, r->s, n);
    s[n] = '\0';
    r->out += n + 1;
    r->s += n;
    return s;
}

static const char *get_lstr(rd_t *r)
{
    apr_uint64_t n;

    return get_uv(r, &n) ? get_str(r, n) : NULL;
}

static int get_fresh(rd_t *r, rc_fresh_t *f)
{
    apr_int64_t fv[NFRESH];
    apr_uint64_t u;
    int i, secs;

    if (r->s >= r->end || (secs = *r->s++) >> NFRESH) {
        return 0;
    }
    if (!get_uv(r, &u) || u > UINT_MAX) {
        return 0;
    }
    f->flags = (unsigned int)u;
    for (i = 0; i < NFRESH; i++) {
        if (!get_uv(r, &u)) {
            return 0;
        }
        fv[i] = unzigzag(u);
        if (secs & (1 << i)) {
            if (fv[i] > APR_INT64_MAX / USEC || fv[i] < APR_INT64_MIN / USEC) {
                return 0;
            }
            fv[i] *= USEC;
        }
        else if (fv[i] % USEC == 0) {
            return 0;
        }
    }
    f->response_time = fv[0];
    f->date = fv[1];
    f->corrected_initial_age = fv[2];
    f->lifetime = fv[3];
    f->swr = fv[4];
    f->sie = fv[5];
    return 1;
}

static int get_field(rd_t *r, apr_table_t *t)
{
    const char *k, *v;
    apr_uint64_t u;
    apr_int64_t secs;
    int code;

    if (r->s >= r->end) {
        return 0;
    }
    code = *r->s++;
    if (code > NNAMES) {
        return 0;
    }
    /* a literal name the table has, or a text value that is a date the
     * encoder would have stored as seconds: not what it writes */
    k = code ? names[code - 1] : get_lstr(r);
    if (!k || (!code && name_code(k)) || !get_uv(r, &u)) {
        return 0;
    }
    if (u == 0) {
        if (!get_uv(r, &u) || u > (apr_uint64_t)DATE_MAX) {
            return 0;
        }
        date_format(r->out, (apr_int64_t)u);
        v = r->out;
        r->out += DATE_LEN + 1;
    }
    else if (!(v = get_str(r, u - 1))
             || rc_meta_date_parse(v, (apr_size_t)(u - 1), &secs)) {
        return 0;
    }
    apr_table_addn(t, k, v);
    return 1;
}

int rc_meta_decode(apr_pool_t *p, const void *blob, apr_size_t len,
                   rc_meta_t *m)
{
    rd_t r, sl;
    apr_uint64_t u, nfields, i;
    char pfx[16];
    int plen;

    memset(m, 0, sizeof(*m));
    if (!blob || len < 1) {
        return 0;
    }
    if (*(const unsigned char *)blob == FMT_PASS) {
        return len == 1 ? (m->kind = RC_META_PASS) : 0;
    }
    if (len < 2) {
        return 0;
    }
    r.s = blob;
    r.end = r.s + len;
    if (*r.s == FMT_VARY) {
        r.s++;
        r.out = apr_palloc(p, len);    /* the spec and its NUL fit */
        if (!(m->vary_spec = get_lstr(&r)) || r.s != r.end) {
            return 0;
        }
        return m->kind = RC_META_VARY;
    }
    if (*r.s++ != FMT_RESPONSE || !get_uv(&r, &u) || u < 200 || u > 999) {
        return 0;
    }
    m->status = (int)u;
    plen = status_prefix(pfx, m->status);
    /* the status line: skipped now, copied once there is room */
    if (!get_uv(&r, &u) || (u >> 1) > (apr_uint64_t)(r.end - r.s)) {
        return 0;
    }
    sl.s = r.s;
    sl.end = r.s += u >> 1;
    /* each field takes at least 2 bytes: the count is bounded by the
     * blob before it sizes anything */
    if (!get_fresh(&r, &m->fresh) || !get_uv(&r, &nfields)
        || nfields > RC_META_MAX_FIELDS
        || nfields > (apr_uint64_t)(r.end - r.s) / 2) {
        return 0;
    }
    /* Room for every string: each takes at least its length + 1 in the
     * blob, except a date (30 decoded) and the status line's prefix. */
    r.out = apr_palloc(p, len + (apr_size_t)plen + 1
                          + (apr_size_t)nfields * (DATE_LEN + 1));
    if (u) {
        sl.out = r.out;
        /* a literal line that starts with "<status> " is not canonical */
        if (!(m->status_line = get_str_pfx(&sl, u >> 1, pfx,
                                           (u & 1) ? (apr_size_t)plen : 0))
            || (!(u & 1) && strncmp(m->status_line, pfx, plen) == 0)) {
            return 0;
        }
        r.out = sl.out;
    }
    m->headers = apr_table_make(p, (int)nfields + 4);
    for (i = 0; i < nfields; i++) {
        if (!get_field(&r, m->headers)) {
            return 0;
        }
    }
    if (r.s != r.end) {
        return 0;
    }
    return m->kind = RC_META_RESPONSE;
}
