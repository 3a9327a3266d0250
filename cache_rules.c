/*
 * cache_rules.c -- the HTTP caching rules of mod_revcache.
 *
 * Owns: the pure RFC 9111 / RFC 5861 logic of a shared cache -- parsing
 * Cache-Control, request and response cacheability, freshness lifetime
 * (explicit, heuristic, admin default), age arithmetic, the hit decision
 * (fresh / stale / stale-while-revalidate / validate / 504),
 * stale-if-error, validators (conditional requests both ways, 304
 * merging), which headers a stored entry keeps.
 *
 * Keys, Vary variants, invalidation URIs and Surrogate-Key tags live in
 * cache_keys.c (same header, cache_rules.h), to keep each file short.
 *
 * Does not own: any I/O, locking, storage or logging.  Nothing here keeps
 * state between calls; every function works on its arguments and
 * allocates only from the pool it is given.  The store (cache_mem.c)
 * keeps rc_fresh_t and the strings produced here; the handler glue
 * (mod_revcache.c) reads headers and applies the decisions.
 *
 * APR and APR-util only: the unit test build has no httpd include path.
 */

#include <stdlib.h>
#include <string.h>

#include "apr.h"
#include "apr_date.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_tables.h"
#include "apr_time.h"

#include "cache_rules.h"

#include "cache_rules_int.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

typedef struct {
    apr_pool_t *p;
    char *buf;
    int n;
} join_ctx_t;

static int join_cb(void *rec, const char *key, const char *value)
{
    join_ctx_t *j = rec;

    (void)key;
    if (j->n++ == 0) {
        j->buf = apr_pstrdup(j->p, value);
    }
    else {
        j->buf = apr_pstrcat(j->p, j->buf, ", ", value, NULL);
    }
    return 1;
}

const char *rc_rules_header_join(apr_pool_t *p, const apr_table_t *t,
                                 const char *name)
{
    join_ctx_t j;

    if (!t) {
        return NULL;
    }
    j.p = p;
    j.buf = NULL;
    j.n = 0;
    apr_table_do(join_cb, &j, t, name, NULL);
    return j.buf;
}

/*
 * delta-seconds (RFC 9111 section 1.2.2): 1*DIGIT, anything larger than
 * 2^31 becomes 2^31.  "" / NULL / non-digits -> RC_DELTA_BAD.
 * Example: "60" -> 60, "99999999999999999999" -> 2147483648, "-1" -> BAD.
 */
static apr_int64_t parse_delta(const char *s, apr_size_t len)
{
    apr_int64_t v = 0;
    apr_size_t i;

    if (!s || len == 0) {
        return RC_DELTA_BAD;
    }
    for (i = 0; i < len; i++) {
        if (!apr_isdigit(s[i])) {
            return RC_DELTA_BAD;
        }
        if (v < RC_DELTA_MAX) {
            v = v * 10 + (s[i] - '0');
        }
    }
    return v > RC_DELTA_MAX ? RC_DELTA_MAX : v;
}

apr_time_t rc_rules_parse_date(const char *s)
{
    if (!s) {
        return 0;
    }
    return apr_date_parse_http(s);   /* APR_DATE_BAD (0) on garbage */
}

const char *rc_rules_format_date(apr_pool_t *p, apr_time_t t)
{
    char *buf = apr_palloc(p, APR_RFC822_DATE_LEN);

    if (apr_rfc822_date(buf, t) != APR_SUCCESS) {
        return NULL;
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* Cache-Control                                                       */
/* ------------------------------------------------------------------ */

/* One directive into cc.  val == NULL: no "=value" part. */
static void cc_apply(rc_cc_t *cc, const char *name, apr_size_t nlen,
                     const char *val, apr_size_t vlen, int bad, apr_pool_t *p)
{
#define NAME_IS(lit) (nlen == sizeof(lit) - 1 \
                      && strncasecmp(name, lit, nlen) == 0)
#define SET_DELTA(member)                                      \
    do {                                                       \
        if (cc->member == RC_DELTA_ABSENT) {                   \
            cc->member = bad ? RC_DELTA_BAD : parse_delta(val, vlen); \
        }                                                      \
    } while (0)

    if (NAME_IS("max-age")) {
        SET_DELTA(max_age);
    }
    else if (NAME_IS("s-maxage")) {
        SET_DELTA(s_maxage);
    }
    else if (NAME_IS("max-stale")) {
        if (cc->max_stale == RC_DELTA_ABSENT) {
            cc->max_stale = val ? (bad ? RC_DELTA_BAD : parse_delta(val, vlen))
                                : RC_DELTA_MAX;
        }
    }
    else if (NAME_IS("min-fresh")) {
        SET_DELTA(min_fresh);
    }
    else if (NAME_IS("stale-while-revalidate")) {
        SET_DELTA(stale_while_revalidate);
    }
    else if (NAME_IS("stale-if-error")) {
        SET_DELTA(stale_if_error);
    }
    else if (NAME_IS("no-store")) {
        cc->flags |= RC_CC_NO_STORE;
    }
    else if (NAME_IS("no-cache")) {
        if (val && vlen > 0 && !bad) {
            const char *l = apr_pstrmemdup(p, val, vlen);
            cc->no_cache_fields = cc->no_cache_fields
                ? apr_pstrcat(p, cc->no_cache_fields, ", ", l, NULL) : l;
        }
        else {
            cc->flags |= RC_CC_NO_CACHE;
        }
    }
    else if (NAME_IS("private")) {
        if (val && vlen > 0 && !bad) {
            const char *l = apr_pstrmemdup(p, val, vlen);
            cc->private_fields = cc->private_fields
                ? apr_pstrcat(p, cc->private_fields, ", ", l, NULL) : l;
        }
        else {
            cc->flags |= RC_CC_PRIVATE;
        }
    }
    else if (NAME_IS("public")) {
        cc->flags |= RC_CC_PUBLIC;
    }
    else if (NAME_IS("must-revalidate")) {
        cc->flags |= RC_CC_MUST_REVALIDATE;
    }
    else if (NAME_IS("proxy-revalidate")) {
        cc->flags |= RC_CC_PROXY_REVALIDATE;
    }
    else if (NAME_IS("no-transform")) {
        cc->flags |= RC_CC_NO_TRANSFORM;
    }
    else if (NAME_IS("only-if-cached")) {
        cc->flags |= RC_CC_ONLY_IF_CACHED;
    }
    else if (NAME_IS("must-understand")) {
        cc->flags |= RC_CC_MUST_UNDERSTAND;
    }
    else if (NAME_IS("immutable")) {
        cc->flags |= RC_CC_IMMUTABLE;
    }
#undef NAME_IS
#undef SET_DELTA
}

/* Skip to just past the next ',' outside a quoted-string (or to NUL). */
static const char *skip_element(const char *s)
{
    int q = 0;

    while (*s) {
        if (q) {
            if (*s == '\\' && s[1]) {
                s++;
            }
            else if (*s == '"') {
                q = 0;
            }
        }
        else if (*s == '"') {
            q = 1;
        }
        else if (*s == ',') {
            return s + 1;
        }
        s++;
    }
    return s;
}

/*
 * Tokenise "name [= token|quoted-string]" elements separated by commas.
 * Example: ` max-age="60", no-cache="Set-Cookie, X-A" ,private`
 *   element 1: name max-age, value 60 (unquoted)
 *   element 2: name no-cache, value Set-Cookie, X-A (comma kept: quoted)
 *   element 3: name private, no value
 * Anything after the value other than OWS before the next comma makes
 * the value bad ("max-age=60 x" -> max-age bad -> treated as stale).
 */
void rc_rules_cc_parse(rc_cc_t *cc, apr_pool_t *p, const char *value)
{
    const char *s = value;

    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh =
        cc->stale_while_revalidate = cc->stale_if_error = RC_DELTA_ABSENT;
    if (!s) {
        return;
    }
    cc->flags |= RC_CC_PRESENT;

    while (*s) {
        const char *name, *val = NULL;
        apr_size_t nlen, vlen = 0;
        int bad = 0;

        s = skip_ows(s);
        if (*s == ',') {
            s++;
            continue;
        }
        if (!*s) {
            break;
        }
        name = s;
        while (is_tchar(*s)) {
            s++;
        }
        nlen = s - name;
        if (nlen == 0) {
            s = skip_element(s);        /* garbage element */
            continue;
        }
        s = skip_ows(s);
        if (*s == '=') {
            s = skip_ows(s + 1);
            if (*s == '"') {
                char *out = apr_palloc(p, strlen(s) + 1);
                apr_size_t o = 0;

                s++;
                while (*s && *s != '"') {
                    if (*s == '\\' && s[1]) {
                        s++;
                    }
                    out[o++] = *s++;
                }
                if (*s == '"') {
                    s++;
                }
                else {
                    bad = 1;            /* unterminated */
                }
                out[o] = '\0';
                val = out;
                vlen = o;
            }
            else {
                val = s;
                while (is_tchar(*s)) {
                    s++;
                }
                vlen = s - val;
                if (vlen == 0) {
                    bad = 1;
                }
            }
            s = skip_ows(s);
        }
        if (*s && *s != ',') {
            bad = 1;
            s = skip_element(s);
        }
        cc_apply(cc, name, nlen, val, vlen, bad, p);
    }
}

void rc_rules_cc_request(rc_cc_t *cc, apr_pool_t *p,
                         const apr_table_t *req_hdrs)
{
    const char *v = rc_rules_header_join(p, req_hdrs, "Cache-Control");

    rc_rules_cc_parse(cc, p, v);
    if (!v) {
        const char *pragma = rc_rules_header_join(p, req_hdrs, "Pragma");
        if (pragma && rc_rules_field_listed(pragma, "no-cache")) {
            cc->flags |= RC_CC_NO_CACHE | RC_CC_PRAGMA;
        }
    }
}

void rc_rules_cc_response(rc_cc_t *cc, apr_pool_t *p,
                          const apr_table_t *resp_hdrs)
{
    rc_rules_cc_parse(cc, p,
                      rc_rules_header_join(p, resp_hdrs, "Cache-Control"));
}

int rc_rules_field_listed(const char *list, const char *field)
{
    apr_size_t flen;
    const char *s = list;

    if (!list || !field) {
        return 0;
    }
    flen = strlen(field);
    while (*s) {
        const char *b, *e;

        s = skip_ows(s);
        b = s;
        while (*s && *s != ',') {
            s++;
        }
        e = s;
        while (e > b && RC_OWS(e[-1])) {
            e--;
        }
        if ((apr_size_t)(e - b) == flen && strncasecmp(b, field, flen) == 0) {
            return 1;
        }
        if (*s == ',') {
            s++;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Options, methods, status codes                                      */
/* ------------------------------------------------------------------ */

void rc_rules_opts_init(rc_rules_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->heuristic_percent = 10;
    o->heuristic_max = apr_time_from_sec(24 * 3600);
    o->default_ttl = 0;
    o->default_sie = 0;
    o->set_cookie = RC_SETCOOKIE_NO_STORE;
    o->ignore_query = 0;
    o->key_headers = NULL;
}

static int method_is(const char *m, const char *lit)
{
    return m && strcmp(m, lit) == 0;  /* methods are case-sensitive */
}

const char *rc_rules_lookup_allowed(const char *method,
                                    const rc_cc_t *req_cc)
{
    (void)req_cc;
    if (method_is(method, "GET") || method_is(method, "HEAD")) {
        return NULL;
    }
    return "method";
}

int rc_rules_method_safe(const char *method)
{
    static const char *const safe[] = {
        "GET", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "SEARCH", "REPORT",
        NULL
    };
    int i;

    for (i = 0; safe[i]; i++) {
        if (method_is(method, safe[i])) {
            return 1;
        }
    }
    return 0;
}

int rc_rules_status_heuristic(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return 1;
    default:
        return 0;
    }
}

int rc_rules_is_error_status(int status)
{
    return status == 500 || status == 502 || status == 503 || status == 504;
}

/* Status codes defined by RFC 9110 (for must-understand). */
static int status_understood(int status)
{
    if ((status >= 200 && status <= 206) || (status >= 300 && status <= 305)
        || status == 307 || status == 308
        || (status >= 400 && status <= 417) || status == 421
        || status == 422 || status == 426
        || (status >= 500 && status <= 505)) {
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Freshness and age                                                   */
/* ------------------------------------------------------------------ */

/* Age: the first member of a list; invalid -> ignored (RFC 9111 5.1). */
static apr_int64_t parse_age(const char *v)
{
    const char *e;
    apr_int64_t a;

    if (!v) {
        return 0;
    }
    v = skip_ows(v);
    e = v;
    while (*e && *e != ',' && !RC_OWS(*e)) {
        e++;
    }
    a = parse_delta(v, e - v);
    return a < 0 ? 0 : a;
}

/* See the worked example in cache_rules.h. */
apr_interval_time_t rc_rules_initial_age(apr_time_t date,
                                         apr_int64_t age_value,
                                         apr_time_t request_time,
                                         apr_time_t response_time)
{
    apr_interval_time_t apparent_age, response_delay, corrected_age_value;

    apparent_age = date ? response_time - date : 0;
    if (apparent_age < 0) {
        apparent_age = 0;
    }
    response_delay = response_time - request_time;
    if (response_delay < 0) {
        response_delay = 0;
    }
    if (age_value > RC_DELTA_MAX) {
        age_value = RC_DELTA_MAX;
    }
    corrected_age_value = apr_time_from_sec(age_value) + response_delay;
    return apparent_age > corrected_age_value ? apparent_age
                                              : corrected_age_value;
}

/*
 * Heuristic lifetime: percent of (date - last_modified), capped.
 * Example: Date 10:00:00, Last-Modified 08:36:40 (5000 s), 10% -> 500 s.
 * A Last-Modified after Date gives nothing (returns -1).
 */
static apr_interval_time_t heuristic(const rc_rules_opts_t *o,
                                     apr_time_t date, apr_time_t lm)
{
    apr_interval_time_t h;

    if (!lm || lm > date || o->heuristic_percent == 0) {
        return -1;
    }
    h = (date - lm) / 100 * o->heuristic_percent
        + (date - lm) % 100 * o->heuristic_percent / 100;
    if (o->heuristic_max > 0 && h > o->heuristic_max) {
        h = o->heuristic_max;
    }
    return h;
}

void rc_rules_fresh_init(rc_fresh_t *f, const rc_rules_opts_t *o,
                         int status, const apr_table_t *resp_hdrs,
                         const rc_cc_t *cc, apr_time_t request_time,
                         apr_time_t response_time)
{
    apr_time_t hdate, lm;
    const char *v;
    int allowed;

    memset(f, 0, sizeof(*f));
    f->response_time = response_time;
    f->sie = -1;

    hdate = rc_rules_parse_date(apr_table_get(resp_hdrs, "Date"));
    f->date = hdate ? hdate : response_time;
    f->corrected_initial_age =
        rc_rules_initial_age(hdate, parse_age(apr_table_get(resp_hdrs, "Age")),
                             request_time, response_time);

    if (cc->flags & RC_CC_MUST_REVALIDATE) {
        f->flags |= RC_FRESH_MUST_REVALIDATE;
    }
    if (cc->flags & RC_CC_PROXY_REVALIDATE) {
        f->flags |= RC_FRESH_PROXY_REVALIDATE;
    }
    if (cc->flags & RC_CC_NO_CACHE) {
        f->flags |= RC_FRESH_NO_CACHE;
    }
    if (cc->flags & RC_CC_PUBLIC) {
        f->flags |= RC_FRESH_PUBLIC;
    }
    if (cc->flags & RC_CC_IMMUTABLE) {
        f->flags |= RC_FRESH_IMMUTABLE;
    }
    if (apr_table_get(resp_hdrs, "ETag")) {
        f->flags |= RC_FRESH_ETAG;
    }
    lm = rc_rules_parse_date(apr_table_get(resp_hdrs, "Last-Modified"));
    if (lm) {
        f->flags |= RC_FRESH_LAST_MODIFIED;
    }
    if (cc->stale_while_revalidate >= 0) {
        f->swr = apr_time_from_sec(cc->stale_while_revalidate);
    }
    if (cc->stale_if_error >= 0) {
        f->sie = apr_time_from_sec(cc->stale_if_error);
    }

    /* explicit: s-maxage > max-age > Expires - Date */
    if (cc->s_maxage != RC_DELTA_ABSENT) {
        f->flags |= RC_FRESH_S_MAXAGE | RC_FRESH_EXPLICIT;
        if (cc->s_maxage == RC_DELTA_BAD) {
            f->flags |= RC_FRESH_INVALID;
        }
        else {
            f->lifetime = apr_time_from_sec(cc->s_maxage);
        }
        return;
    }
    if (cc->max_age != RC_DELTA_ABSENT) {
        f->flags |= RC_FRESH_EXPLICIT;
        if (cc->max_age == RC_DELTA_BAD) {
            f->flags |= RC_FRESH_INVALID;
        }
        else {
            f->lifetime = apr_time_from_sec(cc->max_age);
        }
        return;
    }
    if ((v = apr_table_get(resp_hdrs, "Expires")) != NULL) {
        apr_time_t exp = rc_rules_parse_date(v);

        f->flags |= RC_FRESH_EXPLICIT;
        if (!exp) {
            f->flags |= RC_FRESH_INVALID;   /* "0", garbage: expired */
        }
        else if (exp > f->date) {
            f->lifetime = exp - f->date;
        }
        return;
    }

    /* no explicit freshness: heuristic, then the admin default */
    allowed = rc_rules_status_heuristic(status) || (cc->flags & RC_CC_PUBLIC);
    if (!allowed) {
        return;
    }
    if (lm) {
        apr_interval_time_t h = heuristic(o, f->date, lm);
        if (h >= 0) {
            f->lifetime = h;
            f->flags |= RC_FRESH_HEURISTIC;
        }
        return;
    }
    if (o->default_ttl > 0) {
        f->lifetime = o->default_ttl;
        f->flags |= RC_FRESH_DEFAULT_TTL;
    }
}

apr_interval_time_t rc_rules_current_age(const rc_fresh_t *f,
                                         apr_time_t now)
{
    apr_interval_time_t resident = now - f->response_time;

    if (resident < 0) {
        resident = 0;               /* clock went backwards */
    }
    return f->corrected_initial_age + resident;
}

apr_int64_t rc_rules_age_seconds(const rc_fresh_t *f, apr_time_t now)
{
    apr_int64_t s = apr_time_sec(rc_rules_current_age(f, now));

    return s > RC_DELTA_MAX ? RC_DELTA_MAX : s;
}

apr_int64_t rc_rules_ttl_seconds(const rc_fresh_t *f, apr_time_t now)
{
    apr_interval_time_t r = f->lifetime - rc_rules_current_age(f, now);
    apr_int64_t s = r / APR_USEC_PER_SEC;

    if (r < 0 && r % APR_USEC_PER_SEC != 0) {
        s--;                        /* floor, not truncation */
    }
    return s;
}

apr_time_t rc_rules_stale_at(const rc_fresh_t *f)
{
    return f->response_time + f->lifetime - f->corrected_initial_age;
}

apr_time_t rc_rules_serve_until(const rc_fresh_t *f,
                                const rc_rules_opts_t *o)
{
    apr_interval_time_t w = 0, sie;

    if (f->flags & (RC_FRESH_NO_CACHE | RC_FRESH_NO_STALE)) {
        return f->flags & RC_FRESH_NO_CACHE ? f->response_time
                                            : rc_rules_stale_at(f);
    }
    sie = f->sie >= 0 ? f->sie : o->default_sie;
    w = f->swr > sie ? f->swr : sie;
    return rc_rules_stale_at(f) + w;
}

/* ------------------------------------------------------------------ */
/* Storability                                                         */
/* ------------------------------------------------------------------ */

/* See the list of reasons in cache_rules.h; checked in that order. */
const char *rc_rules_storable(const rc_rules_opts_t *o, const char *method,
                              int status, const apr_table_t *req_hdrs,
                              const rc_cc_t *req_cc,
                              const apr_table_t *resp_hdrs,
                              const rc_cc_t *resp_cc, const rc_fresh_t *f)
{
    unsigned int rf = resp_cc->flags;
    int shareable = (rf & (RC_CC_PUBLIC | RC_CC_MUST_REVALIDATE))
                    || resp_cc->s_maxage != RC_DELTA_ABSENT;

    if (!method_is(method, "GET")) {
        return "method";
    }
    if (status < 200 || status > 599 || status == 206 || status == 304) {
        return "status";
    }
    if ((rf & RC_CC_MUST_UNDERSTAND) && !status_understood(status)) {
        return "status";
    }
    if (req_cc && (req_cc->flags & RC_CC_NO_STORE)) {
        return "no-store";
    }
    /* must-understand with an understood status overrides no-store */
    if ((rf & RC_CC_NO_STORE) && !(rf & RC_CC_MUST_UNDERSTAND)) {
        return "no-store";
    }
    if (rf & RC_CC_PRIVATE) {
        return "private";
    }
    if (req_hdrs && apr_table_get(req_hdrs, "Authorization") && !shareable) {
        return "auth";
    }
    if (resp_hdrs) {
        const char *v;
        int star = 0;
        /* Vary: * anywhere in any Vary line */
        const apr_array_header_t *arr = apr_table_elts(resp_hdrs);
        const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
        int i;

        for (i = 0; i < arr->nelts && !star; i++) {
            if (e[i].key && strcasecmp(e[i].key, "Vary") == 0 && e[i].val) {
                star = rc_rules_field_listed(e[i].val, "*");
            }
        }
        if (star) {
            return "vary-star";
        }
        v = apr_table_get(resp_hdrs, "Set-Cookie");
        if (!v) {
            v = apr_table_get(resp_hdrs, "Set-Cookie2");
        }
        if (v) {
            if (o->set_cookie == RC_SETCOOKIE_NO_STORE) {
                return "set-cookie";
            }
            if (o->set_cookie == RC_SETCOOKIE_EXPLICIT
                && !(rf & RC_CC_PUBLIC)
                && resp_cc->s_maxage == RC_DELTA_ABSENT) {
                return "set-cookie";
            }
        }
    }
    if (!(f->flags & RC_FRESH_EXPLICIT) && !(rf & RC_CC_PUBLIC)
        && !rc_rules_status_heuristic(status)) {
        return "no-freshness";
    }
    if ((f->lifetime <= 0 || (f->flags & RC_FRESH_NO_CACHE))
        && !(f->flags & (RC_FRESH_ETAG | RC_FRESH_LAST_MODIFIED))
        && f->sie <= 0) {
        return "no-freshness";          /* useless: stale on arrival */
    }
    return NULL;
}

/* Hop-by-hop and otherwise never-stored fields. */
static const char *const never_stored[] = {
    "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Proxy-Authenticate",
    "Proxy-Authentication-Info", "Proxy-Authorization",
    "Set-Cookie", "Set-Cookie2", "Age", NULL
};

/* Unset every field named in the comma list @a list from @a t. */
static void unset_listed(apr_pool_t *p, apr_table_t *t, const char *list)
{
    char *copy, *tok, *last;

    if (!list) {
        return;
    }
    copy = apr_pstrdup(p, list);
    for (tok = apr_strtok(copy, ", \t", &last); tok;
         tok = apr_strtok(NULL, ", \t", &last)) {
        apr_table_unset(t, tok);
    }
}

apr_table_t *rc_rules_store_headers(apr_pool_t *p,
                                    const apr_table_t *resp_hdrs,
                                    const rc_cc_t *resp_cc,
                                    apr_time_t response_time)
{
    apr_table_t *t = apr_table_copy(p, resp_hdrs);
    const char *conn = rc_rules_header_join(p, resp_hdrs, "Connection");
    int i;

    unset_listed(p, t, conn);
    for (i = 0; never_stored[i]; i++) {
        apr_table_unset(t, never_stored[i]);
    }
    if (resp_cc) {
        unset_listed(p, t, resp_cc->private_fields);
        unset_listed(p, t, resp_cc->no_cache_fields);
    }
    if (!rc_rules_parse_date(apr_table_get(t, "Date"))) {
        apr_table_set(t, "Date", rc_rules_format_date(p, response_time));
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* Hit decision                                                        */
/* ------------------------------------------------------------------ */

static rc_hit_t hit_validate(const rc_cc_t *req_cc, const char *why,
                             const char **detail)
{
    if (req_cc && (req_cc->flags & RC_CC_ONLY_IF_CACHED)) {
        *detail = "only-if-cached";
        return RC_HIT_504;
    }
    *detail = why;
    return RC_HIT_VALIDATE;
}

/* See the decision table and worked example in cache_rules.h. */
rc_hit_t rc_rules_hit(const rc_fresh_t *f, const rc_cc_t *req_cc,
                      apr_time_t now, const char **detail)
{
    const char *dummy;
    apr_interval_time_t age = rc_rules_current_age(f, now);
    apr_interval_time_t staleness;

    if (!detail) {
        detail = &dummy;
    }
    if (f->flags & RC_FRESH_NO_CACHE) {
        return hit_validate(req_cc, "no-cache", detail);
    }
    if (req_cc && (req_cc->flags & RC_CC_NO_CACHE)) {
        return hit_validate(req_cc, "req-no-cache", detail);
    }
    if (req_cc && req_cc->max_age != RC_DELTA_ABSENT) {
        apr_int64_t ma = req_cc->max_age == RC_DELTA_BAD ? 0
                                                         : req_cc->max_age;
        if (age > apr_time_from_sec(ma)) {
            return hit_validate(req_cc, "req-max-age", detail);
        }
    }
    if (f->lifetime > age) {
        if (req_cc && req_cc->min_fresh >= 0
            && f->lifetime - age < apr_time_from_sec(req_cc->min_fresh)) {
            return hit_validate(req_cc, "req-min-fresh", detail);
        }
        *detail = "fresh";
        return RC_HIT_FRESH;
    }
    staleness = age - f->lifetime;
    if (f->flags & RC_FRESH_NO_STALE) {
        return hit_validate(req_cc, "must-revalidate", detail);
    }
    if (req_cc && req_cc->min_fresh >= 0) {
        return hit_validate(req_cc, "req-min-fresh", detail);
    }
    if (req_cc && req_cc->max_stale >= 0
        && staleness <= apr_time_from_sec(req_cc->max_stale)) {
        *detail = "max-stale";
        return RC_HIT_STALE;
    }
    if (f->swr > 0 && staleness <= f->swr) {
        *detail = "stale-while-revalidate";
        return RC_HIT_SWR;
    }
    return hit_validate(req_cc, "stale", detail);
}

int rc_rules_only_if_cached(const rc_cc_t *req_cc)
{
    return req_cc && (req_cc->flags & RC_CC_ONLY_IF_CACHED) != 0;
}

int rc_rules_stale_if_error(const rc_fresh_t *f, const rc_cc_t *req_cc,
                            const rc_rules_opts_t *o, apr_time_t now)
{
    apr_interval_time_t staleness, window;
    int req_sie = req_cc && req_cc->stale_if_error >= 0;

    if (f->flags & (RC_FRESH_NO_STALE | RC_FRESH_NO_CACHE)) {
        return 0;
    }
    if (req_cc && (req_cc->flags & RC_CC_NO_CACHE) && !req_sie) {
        return 0;
    }
    staleness = rc_rules_current_age(f, now) - f->lifetime;
    if (staleness < 0) {
        return 1;
    }
    if (req_cc && req_cc->max_stale >= 0
        && staleness <= apr_time_from_sec(req_cc->max_stale)) {
        return 1;
    }
    if (req_sie) {
        window = apr_time_from_sec(req_cc->stale_if_error);
    }
    else if (f->sie >= 0) {
        window = f->sie;
    }
    else {
        window = o ? o->default_sie : 0;
    }
    return window > 0 && staleness <= window;
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

/*
 * Next entity-tag of a list: `W/"x", "a,b" , *` yields (weak "x"),
 * ("a,b"), (*).  b and len cover the opaque-tag with its quotes; an
 * unquoted value (a sloppy origin's ETag: abc) is taken up to ',' or
 * whitespace.  Returns NULL at the end.
 */
static const char *etag_next(const char *s, const char **b, apr_size_t *len,
                             int *weak)
{
    while (*s && (RC_OWS(*s) || *s == ',')) {
        s++;
    }
    if (!*s) {
        return NULL;
    }
    *weak = 0;
    if ((s[0] == 'W' || s[0] == 'w') && s[1] == '/') {
        *weak = 1;
        s += 2;
    }
    *b = s;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            s++;
        }
        if (*s == '"') {
            s++;
        }
    }
    else {
        while (*s && *s != ',' && !RC_OWS(*s)) {
            s++;
        }
    }
    *len = s - *b;
    return s;
}

int rc_rules_etag_match(const char *list, const char *etag, int weak)
{
    const char *eb, *lb, *s;
    apr_size_t elen, llen;
    int eweak, lweak;

    if (!list) {
        return 0;
    }
    s = skip_ows(list);
    if (s[0] == '*' && skip_ows(s + 1)[0] == '\0') {
        return 1;
    }
    if (!etag || !etag_next(etag, &eb, &elen, &eweak)) {
        return 0;
    }
    while ((s = etag_next(s, &lb, &llen, &lweak)) != NULL) {
        if (llen == 1 && *lb == '*') {
            return 1;
        }
        if (!weak && (eweak || lweak)) {
            continue;
        }
        if (llen == elen && memcmp(lb, eb, elen) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *const client_conditionals[] = {
    "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
    "If-Range", "Range", NULL
};

void rc_rules_strip_conditionals(apr_table_t *out)
{
    int i;

    for (i = 0; client_conditionals[i]; i++) {
        apr_table_unset(out, client_conditionals[i]);
    }
}

int rc_rules_revalidate_headers(apr_table_t *out, const apr_table_t *stored)
{
    const char *etag = apr_table_get(stored, "ETag");
    const char *lm = apr_table_get(stored, "Last-Modified");
    int n = 0;

    rc_rules_strip_conditionals(out);
    if (etag && *etag) {
        apr_table_set(out, "If-None-Match", etag);
        n++;
    }
    if (lm && rc_rules_parse_date(lm)) {
        apr_table_set(out, "If-Modified-Since", lm);
        n++;
    }
    return n;
}

int rc_rules_304_applies(const apr_table_t *stored,
                         const apr_table_t *resp304)
{
    const char *e304 = apr_table_get(resp304, "ETag");
    const char *lm304 = apr_table_get(resp304, "Last-Modified");

    if (e304) {
        const char *es = apr_table_get(stored, "ETag");
        const char *b;
        apr_size_t len;
        int weak = 0;

        if (!es || !etag_next(e304, &b, &len, &weak)) {
            return 0;
        }
        /* a strong validator must match strongly */
        return rc_rules_etag_match(es, e304, weak);
    }
    if (lm304) {
        const char *ls = apr_table_get(stored, "Last-Modified");
        apr_time_t a = rc_rules_parse_date(lm304);

        return ls && a && a == rc_rules_parse_date(ls);
    }
    return 1;
}

static int merge_excluded(const char *key)
{
    static const char *const body_bound[] = {
        "Content-Length", "Content-Encoding", "Content-Range", NULL
    };
    int i;

    for (i = 0; never_stored[i]; i++) {
        if (strcasecmp(key, never_stored[i]) == 0) {
            return 1;
        }
    }
    for (i = 0; body_bound[i]; i++) {
        if (strcasecmp(key, body_bound[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

apr_table_t *rc_rules_merge_304(apr_pool_t *p, const apr_table_t *stored,
                                const apr_table_t *resp304)
{
    apr_table_t *t = apr_table_copy(p, stored);
    apr_table_t *seen = apr_table_make(p, 8);
    const char *conn = rc_rules_header_join(p, resp304, "Connection");
    const apr_array_header_t *arr = apr_table_elts(resp304);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (!e[i].key || !e[i].val || merge_excluded(e[i].key)
            || rc_rules_field_listed(conn, e[i].key)) {
            continue;
        }
        if (!apr_table_get(seen, e[i].key)) {
            apr_table_unset(t, e[i].key);   /* replace all old lines */
            apr_table_setn(seen, e[i].key, "1");
        }
        apr_table_add(t, e[i].key, e[i].val);
    }
    return t;
}

typedef struct {
    const char *etag;
    int match;
} inm_ctx_t;

/* One If-None-Match line (a request may carry several). */
static int inm_cb(void *rec, const char *key, const char *value)
{
    inm_ctx_t *c = rec;

    (void)key;
    if (rc_rules_etag_match(value, c->etag, 1)) {
        c->match = 1;
        return 0;
    }
    return 1;
}

rc_cond_t rc_rules_client_conditional(const char *method,
                                      const apr_table_t *req_hdrs,
                                      const apr_table_t *stored,
                                      const rc_fresh_t *f)
{
    const char *inm, *ims;
    apr_time_t since, lm;

    if (!method_is(method, "GET") && !method_is(method, "HEAD")) {
        return RC_COND_NONE;
    }
    if (apr_table_get(req_hdrs, "If-Match")
        || apr_table_get(req_hdrs, "If-Unmodified-Since")) {
        return RC_COND_PASS;
    }
    inm = apr_table_get(req_hdrs, "If-None-Match");
    if (inm) {
        inm_ctx_t c;

        c.etag = apr_table_get(stored, "ETag");
        c.match = 0;
        apr_table_do(inm_cb, &c, req_hdrs, "If-None-Match", NULL);
        return c.match ? RC_COND_NOT_MODIFIED : RC_COND_NONE;
    }
    ims = apr_table_get(req_hdrs, "If-Modified-Since");
    if (!ims || !(since = rc_rules_parse_date(ims))) {
        return RC_COND_NONE;
    }
    lm = rc_rules_parse_date(apr_table_get(stored, "Last-Modified"));
    if (!lm) {
        lm = rc_rules_parse_date(apr_table_get(stored, "Date"));
    }
    if (!lm) {
        lm = f ? f->response_time : 0;
    }
    if (!lm) {
        return RC_COND_NONE;
    }
    return lm <= since ? RC_COND_NOT_MODIFIED : RC_COND_NONE;
}
