/*
 * mod_floor.c - httpd's own floor for bench/run: the cheapest possible
 * module answering 1 KiB from memory, so that every benchmark run can state
 * what httpd itself costs per request and how much any module adds on top.
 *
 *   quick handler  URIs under /floorq answered in the quick_handler hook,
 *                  before translate_name, map_to_storage, access control
 *                  (what a cache with a "quick handler" option can reach)
 *   handler        "SetHandler floor": answered in the handler phase after
 *                  every earlier phase ran (what a normal handler can reach)
 *
 * Both send the same response: 200, Content-Type, Content-Length, a
 * Cache-Control header, and 1024 bytes from one static buffer as an
 * immortal bucket (no copy, no allocation beyond the brigade).
 *
 * Built by bench/run with apxs; not part of mod_revcache.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "apr_buckets.h"
#include "apr_strings.h"

#define FLOOR_SIZE 1024

static char floor_body[FLOOR_SIZE];

static int floor_respond(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb;

    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_set_content_type(r, "application/octet-stream");
    ap_set_content_length(r, FLOOR_SIZE);
    apr_table_setn(r->headers_out, "Cache-Control", "max-age=3600");
    bb = apr_brigade_create(r->pool, c->bucket_alloc);
    if (!r->header_only) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(
                                    floor_body, FLOOR_SIZE, c->bucket_alloc));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(c->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS) {
        return AP_FILTER_ERROR;
    }
    return OK;
}

static int floor_quick_handler(request_rec *r, int lookup)
{
    if (lookup || strncmp(r->uri, "/floorq", 7) != 0) {
        return DECLINED;
    }
    return floor_respond(r);
}

static int floor_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, "floor") != 0) {
        return DECLINED;
    }
    return floor_respond(r);
}

static int floor_post_config(apr_pool_t *p, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    memset(floor_body, 'f', sizeof floor_body);
    return OK;
}

static void floor_register_hooks(apr_pool_t *p)
{
    ap_hook_post_config(floor_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_quick_handler(floor_quick_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(floor_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(floor) = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    floor_register_hooks
};
