# Forwarding through a RevProxyPass route: methods, paths, bodies, the
# response framings, routes and exclusions.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET HEAD POST PUT);
use Digest::MD5 qw(md5_hex);
use lib 't/lib';
use RcTest qw(raw origin_count);

plan tests => 49, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

# A GET reaches the origin with method, path and query unchanged.
$res = GET '/o/echo/a?x=1&y=%20z';
is $res->code, 200, 'GET through the proxy';
like $res->content, qr{^GET /echo/a\?x=1&y=%20z HTTP/1\.1\r\n}, 'request line forwarded';
like $res->content, qr{\r\nHost: 127\.0\.0\.1:\d+\r\n}i, 'Host is the backend authority';
ok $res->header('X-Conn-Id'), 'response headers come from the origin';

# The raw, still-encoded path goes to the backend as it came.
$res = GET '/o/echo/%41b%20c%7E';
like $res->content, qr{^GET /echo/%41b%20c%7E HTTP/1\.1}, 'encoded path passed raw';
$res = GET '/%6F/echo/enc-prefix';
like $res->content, qr{^GET /echo/enc-prefix HTTP}, 'encoded prefix matched after decoding';

# Normalised away "./" and "//": the normalised remainder is forwarded.
my $raw = raw("GET /o/echo/./n//m/x/../y HTTP/1.0\r\n\r\n");
like $raw, qr{GET /echo/n/m/y HTTP/1\.1}, 'normalised path forwarded';

# Encoded dot-segments cannot climb out of the route's base path: the
# normalised form is forwarded, never the raw one.
$raw = raw("GET /o/echo/%2e%2e/echo/x HTTP/1.0\r\n\r\n");
like $raw, qr{GET /echo/x HTTP/1\.1}, 'encoded ../ resolved before forwarding';
$raw = raw("GET /o/echo/a/%2E%2e/b HTTP/1.0\r\n\r\n");
like $raw, qr{GET /echo/b HTTP/1\.1}, 'mixed-case encoded ../ resolved before forwarding';

# Longest prefix wins; "!" excludes; a prefix without a trailing slash
# matches whole segments only.
$res = GET '/o/local/index.html';
is $res->code, 200, 'excluded prefix served locally';
is $res->content, "local file\n", 'excluded prefix: local file, not the origin';
$res = GET '/seg/x';
like $res->content, qr{^GET /echo/seg/x HTTP}, 'segment prefix /seg matches /seg/x';
$res = GET '/seg';
like $res->content, qr{^GET /echo/seg HTTP}, 'segment prefix /seg matches /seg';
$res = GET '/segx';
is $res->code, 404, 'segment prefix /seg does not match /segx';

# Routes inside <Location>, and httpd's access control around routes.
$res = GET '/loc/inner?q=1';
like $res->content, qr{^GET /echo/loc/inner\?q=1 HTTP}, 'route in <Location>';
$res = GET '/guarded/x';
is $res->code, 403, 'Require all denied applies to a <Location> route';
$res = GET '/o/echo/denied';
is $res->code, 403, 'Require all denied applies inside a server route';

# HEAD, 204 and 304 carry no body.
$res = HEAD '/o/length?size=1234';
is $res->code, 200, 'HEAD';
is $res->header('Content-Length'), 1234, 'HEAD keeps Content-Length';
is length($res->content), 0, 'HEAD has no body';
like origin_log_last(), qr{method=HEAD}, 'HEAD forwarded as HEAD';
($raw) = raw("GET /o/no-content HTTP/1.1\r\nHost: x\r\n\r\nGET /o/not-modified HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
like $raw, qr{^HTTP/1\.1 204 .*?\r\n\r\nHTTP/1\.1 304 }s, '204 then 304 on one connection, neither with a body';
like $raw, qr{HTTP/1\.1 304 [^\r]*\r\n(?:[^\r]+\r\n)*\r\n\z}, 'nothing after the 304 head';

# Request bodies: Content-Length and chunked, streamed.
my $body = 'x' x 300000;
$res = POST '/o/echo/post', content => $body;
is $res->code, 200, 'POST with Content-Length';
like $res->content, qr{\r\nContent-Length: 300000\r\n}, 'Content-Length forwarded';
is length(($res->content =~ /\n--body--\n(.*)\z/s)[0]), 300000, 'whole body arrived';
($raw) = raw("POST /o/echo/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
like $raw, qr{Transfer-Encoding: chunked\r\n}, 'chunked request body forwarded chunked';
like $raw, qr{--body--\nhello world\z}, 'chunked request body decoded by the origin';
($raw) = raw("POST /o/echo/empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
like $raw, qr{\r\nContent-Length: 0\r\n.*--body--\n\z}s, 'empty POST keeps Content-Length: 0';
# Expect: 100-continue is answered by httpd before we read the body.
($raw) = raw("PUT /o/echo/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", until => qr/100 Continue\r\n\r\n/);
like $raw, qr{^HTTP/1\.1 100 Continue\r\n\r\n}, '100 Continue before the body';
($raw) = raw("PUT /o/echo/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nbody");
like $raw, qr{HTTP/1\.1 200 .*--body--\nbody\z}s, 'body forwarded after 100 Continue';
unlike $raw, qr{\r\nExpect:}i, 'Expect is not forwarded';

# Response framings: Content-Length, chunked (with extensions and
# trailers), close-delimited, HTTP/1.0.
$res = GET '/o/chunked?n=5&size=1000&ext=1&trailer=1';
is $res->code, 200, 'chunked response';
is length($res->content), 5000, 'chunked response body complete';
is $res->content, substr(join('', map { chr(97 + $_ % 26) } 0 .. 4999), 0), 'chunked body bytes exact';
$res = GET '/o/close-delimited?size=70000';
is length($res->content), 70000, 'close-delimited response complete';
$res = GET '/o/http10?size=10';
is $res->content, '0123456789', 'HTTP/1.0 backend';
$res = GET '/o/length?size=200000';
is length($res->content), 200000, 'large Content-Length body';
is $res->content, substr('0123456789' x 20000, 0, 200000), 'large body bytes exact';

# A real web server as backend: a vhost of this httpd serving a file.
$res = GET '/static/big.txt';
is $res->code, 200, 'static file through the proxy';
open my $fh, '<', Apache::Test::vars('documentroot') . '/be1/big.txt' or die;
my $file = do { local $/; <$fh> };
is md5_hex($res->content), md5_hex($file), 'static file bytes exact';
$res = GET '/static/missing';
is $res->code, 404, 'backend 404 passed on';

# Interim responses: 100 is dropped, 103 relayed, then the final one.
($raw) = raw("GET /o/interim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
like $raw, qr{^HTTP/1\.1 103 Early Hints\r\n.*Link: </style\.css>; rel=preload\r\n}s, '103 relayed';
unlike $raw, qr{100 Continue}, '100 from the backend not relayed';
like $raw, qr{HTTP/1\.1 200 OK\r\n.*final\n\z}s, 'final response after the interim one';

# Methods pass through as they are.
$res = PUT '/o/echo/put', content => 'abc';
like $res->content, qr{^PUT /echo/put HTTP}, 'PUT';
$res = Apache::TestRequest::user_agent()->request(HTTP::Request->new(DELETE => Apache::TestRequest::resolve_url('/o/echo/del')));
like $res->content, qr{^DELETE /echo/del HTTP}, 'DELETE';
$res = Apache::TestRequest::user_agent()->request(HTTP::Request->new(PATCH => Apache::TestRequest::resolve_url('/o/echo/p'), ['Content-Type' => 'text/plain'], 'pp'));
like $res->content, qr{^PATCH /echo/p HTTP.*--body--\npp\z}s, 'PATCH with body';

ok $log->check(qr/AH01630/), 'no unexpected errors in the log';

sub origin_log_last { (RcTest::origin_log())[-1] }
