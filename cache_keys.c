/*
 * cache_keys.c -- the naming side of mod_revcache's HTTP cache rules:
 * what a stored response is called and which names a request touches.
 *
 * Owns: Vary specifications and the normalised variant strings of
 * requests (RFC 9111 section 4.1), the URL key and full primary key of an
 * entry (scheme/host/port/path?query + configured request headers),
 * the URL keys an unsafe request invalidates (RFC 9111 section 4.4,
 * same-origin rule, relative Location resolution per RFC 3986), and
 * Surrogate-Key tag lists for purge by tag.
 *
 * Does not own: hashing the keys or finding entries (cache_mem.c), the
 * freshness and validation rules (cache_rules.c).  Declared in
 * cache_rules.h.  Pure functions: no I/O, no state, memory only from the
 * pool given; APR and APR-util only.
 */

#include <stdlib.h>
#include <string.h>

#include "apr.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_tables.h"

#include "cache_rules.h"

#include "cache_rules_int.h"

/* ------------------------------------------------------------------ */
/* Vary                                                                */
/* ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Push a copy of [b, e) onto arr unless already there. */
static void push_unique(apr_array_header_t *arr, const char *b, apr_size_t n)
{
    int i;

    for (i = 0; i < arr->nelts; i++) {
        const char *x = APR_ARRAY_IDX(arr, i, const char *);
        if (strlen(x) == n && memcmp(x, b, n) == 0) {
            return;
        }
    }
    APR_ARRAY_PUSH(arr, const char *) = apr_pstrmemdup(arr->pool, b, n);
}

static const char *join_array(apr_pool_t *p, const apr_array_header_t *a,
                              char sep)
{
    return a->nelts ? apr_array_pstrcat(p, a, sep) : "";
}

/*
 * Example: "Accept-Encoding, cookie" + "ACCEPT-encoding" ->
 * names [accept-encoding, cookie, accept-encoding] -> deduplicated,
 * sorted -> "accept-encoding,cookie".  Names that are not tokens are
 * dropped; "*" makes the whole spec NULL.
 */
const char *rc_rules_vary_spec(apr_pool_t *p, const apr_table_t *resp_hdrs)
{
    const char *v = rc_rules_header_join(p, resp_hdrs, "Vary");
    apr_array_header_t *names;
    char *copy, *tok, *last;

    if (!v) {
        return "";
    }
    names = apr_array_make(p, 4, sizeof(const char *));
    copy = apr_pstrdup(p, v);
    for (tok = apr_strtok(copy, ", \t", &last); tok;
         tok = apr_strtok(NULL, ", \t", &last)) {
        char *c;
        int ok = 1;

        if (strcmp(tok, "*") == 0) {
            return NULL;
        }
        for (c = tok; *c; c++) {
            if (!is_tchar(*c)) {
                ok = 0;
                break;
            }
            *c = apr_tolower(*c);
        }
        if (ok) {
            push_unique(names, tok, strlen(tok));
        }
    }
    qsort(names->elts, names->nelts, sizeof(const char *), cmp_str);
    return join_array(p, names, ',');
}

/*
 * Generic value normalisation.  Example:
 *   ` a ,  b;  q=1 ,, "x  , y"  c ` -> `a,b;q=1,"x  , y" c`
 * Whitespace next to ',' / ';' and at the ends goes, other runs become
 * one space, empty list members go, quoted strings are kept verbatim.
 */
static const char *norm_value(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) + 1);
    apr_size_t o = 0;
    int q = 0, space = 0;

    for (; *v; v++) {
        char c = *v;

        if (q) {
            out[o++] = c;
            if (c == '\\' && v[1]) {
                out[o++] = *++v;
            }
            else if (c == '"') {
                q = 0;
            }
            continue;
        }
        if (RC_OWS(c)) {
            space = 1;
            continue;
        }
        if (c == ',') {
            space = 0;
            if (o > 0 && out[o - 1] != ',') {
                out[o++] = ',';
            }
            continue;
        }
        if (c == ';') {
            space = 0;
            out[o++] = ';';
            continue;
        }
        if (space && o > 0 && out[o - 1] != ',' && out[o - 1] != ';') {
            out[o++] = ' ';
        }
        space = 0;
        if (c == '"') {
            q = 1;
        }
        out[o++] = c;
    }
    while (o > 0 && out[o - 1] == ',') {
        o--;
    }
    out[o] = '\0';
    return out;
}

/* q=0, q=0., q=0.000 -> 1 (refused coding). */
static int q_is_zero(const char *params)
{
    const char *s = params;

    while ((s = strchr(s, ';')) != NULL) {
        s = skip_ows(s + 1);
        if ((*s == 'q' || *s == 'Q')) {
            const char *t = skip_ows(s + 1);
            if (*t == '=') {
                t = skip_ows(t + 1);
                if (*t != '0') {
                    return 0;
                }
                t++;
                if (*t == '.') {
                    t++;
                    while (*t == '0') {
                        t++;
                    }
                }
                return *t == '\0' || *t == ';' || RC_OWS(*t);
            }
        }
    }
    return 0;
}

/*
 * Accept-Encoding: "br;q=0.5, GZIP , deflate;q=0, x-gzip" -> "br,gzip".
 */
static const char *norm_accept_encoding(apr_pool_t *p, const char *v)
{
    apr_array_header_t *codings = apr_array_make(p, 4, sizeof(const char *));
    char *copy = apr_pstrdup(p, v), *tok, *last;

    for (tok = apr_strtok(copy, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        char *b = (char *)skip_ows(tok), *e = b, *c;

        while (*e && *e != ';' && !RC_OWS(*e)) {
            e++;
        }
        if (e == b || q_is_zero(e)) {
            continue;
        }
        for (c = b; c < e; c++) {
            *c = apr_tolower(*c);
        }
        if (e - b == 6 && strncmp(b, "x-gzip", 6) == 0) {
            b += 2;
        }
        else if (e - b == 10 && strncmp(b, "x-compress", 10) == 0) {
            b += 2;
        }
        push_unique(codings, b, e - b);
    }
    qsort(codings->elts, codings->nelts, sizeof(const char *), cmp_str);
    return join_array(p, codings, ',');
}

/* "name=value" (normalised) or "name" when absent; name is lowercase. */
static const char *variant_part(apr_pool_t *p, const char *name,
                                const apr_table_t *req_hdrs)
{
    const char *v = rc_rules_header_join(p, req_hdrs, name);

    if (!v) {
        return name;
    }
    if (strcmp(name, "accept-encoding") == 0) {
        v = norm_accept_encoding(p, v);
    }
    else {
        v = norm_value(p, v);
    }
    return apr_pstrcat(p, name, "=", v, NULL);
}

const char *rc_rules_vary_variant(apr_pool_t *p, const char *spec,
                                  const apr_table_t *req_hdrs)
{
    apr_array_header_t *parts;
    char *copy, *tok, *last;

    if (!spec) {
        return NULL;
    }
    if (!*spec) {
        return "";
    }
    parts = apr_array_make(p, 4, sizeof(const char *));
    copy = apr_pstrdup(p, spec);
    for (tok = apr_strtok(copy, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        APR_ARRAY_PUSH(parts, const char *) = variant_part(p, tok, req_hdrs);
    }
    return join_array(p, parts, '\n');
}

int rc_rules_vary_match(apr_pool_t *p, const char *spec,
                        const char *stored_variant,
                        const apr_table_t *req_hdrs)
{
    const char *v = rc_rules_vary_variant(p, spec, req_hdrs);

    return v && stored_variant && strcmp(v, stored_variant) == 0;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

static apr_port_t default_port(const char *scheme)
{
    if (strcasecmp(scheme, "http") == 0) {
        return 80;
    }
    if (strcasecmp(scheme, "https") == 0) {
        return 443;
    }
    return 0;
}

/*
 * "Example.COM:8080" -> host "example.com", port 8080; "[::1]" -> "[::1]",
 * 0; "user@h" (userinfo) -> "h".  Returns -1 for an empty host, a bad
 * port, or characters that have no place in an authority.
 */
static int split_hostport(apr_pool_t *p, const char *hostinfo, char **host,
                          apr_port_t *port)
{
    const char *at = strrchr(hostinfo, '@'), *colon, *end;
    char *h, *c;

    if (at) {
        hostinfo = at + 1;
    }
    *port = 0;
    if (*hostinfo == '[') {
        end = strchr(hostinfo, ']');
        if (!end) {
            return -1;
        }
        end++;
        colon = *end == ':' ? end : NULL;
        if (*end && !colon) {
            return -1;
        }
    }
    else {
        colon = strrchr(hostinfo, ':');
        end = colon ? colon : hostinfo + strlen(hostinfo);
    }
    if (end == hostinfo) {
        return -1;
    }
    if (colon && colon[1]) {
        long n = 0;
        const char *d;

        for (d = colon + 1; *d; d++) {
            if (!apr_isdigit(*d) || (n = n * 10 + (*d - '0')) > 65535) {
                return -1;
            }
        }
        if (n == 0) {
            return -1;
        }
        *port = (apr_port_t)n;
    }
    h = apr_pstrmemdup(p, hostinfo, end - hostinfo);
    for (c = h; *c; c++) {
        if (*c <= ' ' || *c == '/' || *c == '?' || *c == '#' || *c == 0x7f) {
            return -1;
        }
        *c = apr_tolower(*c);
    }
    *host = h;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = apr_toupper(c);
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "/a%7eb%2f%zz" -> "/a~b%2F%zz": unreserved decoded, hex uppercased. */
static const char *norm_path(apr_pool_t *p, const char *path)
{
    char *out = apr_palloc(p, strlen(path) + 1);
    apr_size_t o = 0;

    for (; *path; path++) {
        int hi, lo;

        if (*path == '%' && (hi = hexval(path[1])) >= 0
            && (lo = hexval(path[2])) >= 0) {
            int c = hi * 16 + lo;
            if (apr_isalnum(c) || c == '-' || c == '.' || c == '_'
                || c == '~') {
                out[o++] = (char)c;
            }
            else {
                out[o++] = '%';
                out[o++] = apr_toupper(path[1]);
                out[o++] = apr_toupper(path[2]);
            }
            path += 2;
        }
        else {
            out[o++] = *path;
        }
    }
    out[o] = '\0';
    return out;
}

const char *rc_rules_url_key(apr_pool_t *p, const rc_rules_opts_t *o,
                             const char *scheme, const char *host,
                             apr_port_t port, const char *path,
                             const char *query)
{
    char *sch, *h, *c;
    apr_port_t hport;
    const char *portstr = "";

    if (!scheme || !*scheme || !host || !*host
        || split_hostport(p, host, &h, &hport) != 0) {
        return NULL;
    }
    sch = apr_pstrdup(p, scheme);
    for (c = sch; *c; c++) {
        *c = apr_tolower(*c);
    }
    if (!port) {
        port = hport;
    }
    if (port && port != default_port(sch)) {
        char *b = apr_palloc(p, 7), *e = b + 6;     /* ":65535" */

        *e = '\0';
        do {
            *--e = (char)('0' + port % 10);
            port /= 10;
        } while (port);
        *--e = ':';
        portstr = e;
    }
    path = (path && *path) ? norm_path(p, path) : "/";
    if (o && o->ignore_query) {
        query = NULL;
    }
    return apr_pstrcat(p, sch, "://", h, portstr, path,
                       (query && *query) ? "?" : "",
                       (query && *query) ? query : "", NULL);
}

const char *rc_rules_key(apr_pool_t *p, const rc_rules_opts_t *o,
                         const char *url_key, const apr_table_t *req_hdrs)
{
    const char *key = url_key;
    int i;

    if (!o || !o->key_headers || !url_key) {
        return url_key;
    }
    for (i = 0; i < o->key_headers->nelts; i++) {
        char *name = apr_pstrdup(p, APR_ARRAY_IDX(o->key_headers, i,
                                                  const char *));
        char *c;

        for (c = name; *c; c++) {
            *c = apr_tolower(*c);
        }
        key = apr_pstrcat(p, key, "\n", variant_part(p, name, req_hdrs),
                          NULL);
    }
    return key;
}

/* ------------------------------------------------------------------ */
/* Invalidation                                                        */
/* ------------------------------------------------------------------ */

/*
 * RFC 3986 section 5.2.4 on an absolute path.
 * Example: "/a/b/c/./../../g" -> "/a/g"; "/x/.." -> "/".
 */
static const char *remove_dots(apr_pool_t *p, const char *path)
{
    char *in = apr_pstrdup(p, path);
    char *out = apr_palloc(p, strlen(path) + 2);
    apr_size_t o = 0;

    while (*in) {
        if (strncmp(in, "../", 3) == 0) {
            in += 3;
        }
        else if (strncmp(in, "./", 2) == 0) {
            in += 2;
        }
        else if (strncmp(in, "/./", 3) == 0) {
            in += 2;
        }
        else if (strcmp(in, "/.") == 0) {
            in[1] = '\0';
        }
        else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
            if (in[3] == '/') {
                in += 3;            /* "/../x" -> "/x" */
            }
            else {
                in += 2;            /* "/.." -> "/" */
                *in = '/';
            }
            while (o > 0 && out[o - 1] != '/') {
                o--;
            }
            if (o > 0) {
                o--;
            }
        }
        else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
            break;
        }
        else {
            if (*in == '/') {
                out[o++] = *in++;
            }
            while (*in && *in != '/') {
                out[o++] = *in++;
            }
        }
    }
    if (o == 0) {
        out[o++] = '/';
    }
    out[o] = '\0';
    return out;
}

typedef struct {
    const char *scheme;     /* NULL if none */
    const char *authority;  /* NULL if none */
    const char *path;       /* never NULL, may be "" */
    const char *query;      /* NULL if none */
} uri_ref_t;

/* Split a URI reference; the fragment is dropped. */
static void parse_ref(apr_pool_t *p, const char *s, uri_ref_t *r)
{
    const char *c, *e;

    memset(r, 0, sizeof(*r));
    s = apr_pstrmemdup(p, s, strcspn(s, "#"));
    c = s;
    if (apr_isalpha(*c)) {
        while (apr_isalnum(*c) || *c == '+' || *c == '-' || *c == '.') {
            c++;
        }
        if (*c == ':') {
            r->scheme = apr_pstrmemdup(p, s, c - s);
            s += c - s + 1;
        }
    }
    if (s[0] == '/' && s[1] == '/') {
        s += 2;
        e = s + strcspn(s, "/?");
        r->authority = apr_pstrmemdup(p, s, e - s);
        s = e;
    }
    e = s + strcspn(s, "?");
    r->path = apr_pstrmemdup(p, s, e - s);
    if (*e == '?') {
        r->query = e + 1;
    }
}

/*
 * Resolve @a ref against the target and return its URL key if it has
 * the same scheme, host and port, else NULL.
 * Example: target http://a.example/x/y, "../z" -> merge "/x/../z" ->
 * "/z" -> "http://a.example/z"; "//b.example/q" -> other host -> NULL.
 */
static const char *same_origin_key(apr_pool_t *p, const rc_rules_opts_t *o,
                                   const char *scheme, const char *host,
                                   apr_port_t port, const char *path,
                                   const char *query, const char *ref)
{
    uri_ref_t r;
    const char *tpath, *tquery;
    char *rhost;
    apr_port_t rport;

    parse_ref(p, skip_ows(ref), &r);
    if (r.scheme && strcasecmp(r.scheme, scheme) != 0) {
        return NULL;
    }
    if (r.scheme && !r.authority) {
        return NULL;                    /* e.g. urn:..., not http */
    }
    if (r.authority) {
        if (split_hostport(p, r.authority, &rhost, &rport) != 0) {
            return NULL;
        }
        if (!rport) {
            rport = default_port(scheme);
        }
        if (strcmp(rhost, host) != 0 || rport != port) {
            return NULL;
        }
        tpath = remove_dots(p, *r.path ? r.path : "/");
        tquery = r.query;
    }
    else if (!*r.path) {
        tpath = path;
        tquery = r.query ? r.query : query;
    }
    else if (r.path[0] == '/') {
        tpath = remove_dots(p, r.path);
        tquery = r.query;
    }
    else {
        const char *slash = strrchr(path, '/');
        const char *dir = slash ? apr_pstrmemdup(p, path, slash - path + 1)
                                : "/";
        tpath = remove_dots(p, apr_pstrcat(p, dir, r.path, NULL));
        tquery = r.query;
    }
    return rc_rules_url_key(p, o, scheme, host, port, tpath, tquery);
}

apr_array_header_t *rc_rules_invalidations(apr_pool_t *p,
                                           const rc_rules_opts_t *o,
                                           const char *method, int status,
                                           const char *scheme,
                                           const char *host,
                                           apr_port_t port,
                                           const char *path,
                                           const char *query,
                                           const apr_table_t *resp_hdrs)
{
    static const char *const loc_fields[] = {
        "Location", "Content-Location", NULL
    };
    apr_array_header_t *out = apr_array_make(p, 3, sizeof(const char *));
    const char *target;
    char *h, *sch, *c;
    apr_port_t hport;
    int i;

    if (rc_rules_method_safe(method) || status < 200 || status > 399) {
        return out;
    }
    target = rc_rules_url_key(p, o, scheme, host, port, path, query);
    if (!target) {
        return out;
    }
    APR_ARRAY_PUSH(out, const char *) = target;

    /* the target's origin, normalised for comparisons */
    split_hostport(p, host, &h, &hport);
    sch = apr_pstrdup(p, scheme);
    for (c = sch; *c; c++) {
        *c = apr_tolower(*c);
    }
    if (!port) {
        port = hport ? hport : default_port(sch);
    }
    if (!path || !*path) {
        path = "/";
    }
    for (i = 0; loc_fields[i] && resp_hdrs; i++) {
        const char *ref = apr_table_get(resp_hdrs, loc_fields[i]);
        const char *k;

        if (!ref || !*ref) {
            continue;
        }
        k = same_origin_key(p, o, sch, h, port, path, query, ref);
        if (k) {
            push_unique(out, k, strlen(k));
        }
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Surrogate-Key                                                       */
/* ------------------------------------------------------------------ */

apr_array_header_t *rc_rules_surrogate_keys(apr_pool_t *p, const char *value)
{
    apr_array_header_t *tags = apr_array_make(p, 4, sizeof(const char *));
    const char *s = value;

    while (s && *s) {
        apr_size_t n;

        s += strspn(s, " \t,");
        n = strcspn(s, " \t,");
        if (n > 0) {
            push_unique(tags, s, n);
        }
        s += n;
    }
    return tags;
}
