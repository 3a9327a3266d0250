# Header policy: hop-by-hop fields stay on their hop, X-Forwarded-*,
# Forwarded and Via are added as configured, Host is the backend's unless
# preserved, and RevProxyPassReverse rewrites backend URLs.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET);
use lib 't/lib';
use RcTest qw(raw);

plan tests => 33, need_lwp;

my $log = RcTest::LogWatch->new;
my ($res, $raw, $head);

# Request side: Connection and everything it names, and the fixed
# hop-by-hop names, never reach the backend; end-to-end fields do.
$raw = raw("GET /o/echo/hop HTTP/1.1\r\nHost: front\r\n"
         . "Connection: keep-alive, X-Hop-Named\r\nX-Hop-Named: secret\r\n"
         . "Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\n"
         . "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\n"
         . "Trailer: X-T\r\nX-End-To-End: kept\r\nCookie: a=1\r\n"
         . "Connection: close\r\n\r\n");
($head) = $raw =~ /\r\n\r\n(.*?\r\n\r\n)/s;
for my $h (qw(X-Hop-Named Keep-Alive TE Upgrade Proxy-Authorization
              Proxy-Connection Trailer)) {
    unlike $head, qr/^\Q$h\E:/mi, "request field $h not forwarded";
}
unlike $head, qr/^Connection:.*(?:keep-alive|X-Hop)/mi, 'client Connection not forwarded';
like $head, qr/^X-End-To-End: kept\r$/m, 'end-to-end field forwarded';
like $head, qr/^Cookie: a=1\r$/m, 'Cookie forwarded';

# Forwarding information (main server: RevProxyForwarded On by default).
$res = GET '/o/echo/fwd', 'X-Forwarded-For' => '10.0.0.1';
like $res->content, qr/^X-Forwarded-For: 10\.0\.0\.1, 127\.0\.0\.1\r$/m, 'X-Forwarded-For appended';
like $res->content, qr/^X-Forwarded-Host: [^\r]+\r$/m, 'X-Forwarded-Host';
like $res->content, qr/^X-Forwarded-Proto: http\r$/m, 'X-Forwarded-Proto';
like $res->content, qr/^Via: 1\.1 \S+\r$/m, 'Via';
unlike $res->content, qr/^Forwarded:/m, 'no RFC 7239 Forwarded unless asked';

# Several incoming fields of a list join in order before our value.
$raw = raw("GET /o/echo/xff HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n"
         . "Via: 1.0 a\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nConnection: close\r\n\r\n");
like $raw, qr/^X-Forwarded-For: 10\.0\.0\.1, 10\.0\.0\.2, 10\.0\.0\.3, 127\.0\.0\.1\r$/m, 'several X-Forwarded-For fields joined, ours last';
like $raw, qr/^Via: 1\.0 a, 1\.1 \S+\r$/m, 'Via extended';
is scalar(() = $raw =~ /^X-Forwarded-For:/mg), 1, 'one X-Forwarded-For field';

# front2: RevProxyForwarded RFC7239 and RevProxyPreserveHost On.
Apache::TestRequest::module('front2');
$res = GET '/o/echo/fwd2', Host => 'www.example.test';
like $res->content, qr/^Forwarded: for=127\.0\.0\.1;proto=http;host="www\.example\.test"\r$/m, 'Forwarded (RFC 7239)';
unlike $res->content, qr/^X-Forwarded-For:/m, 'no X-Forwarded-For in RFC7239 mode';
like $res->content, qr/^Host: www\.example\.test\r$/m, 'RevProxyPreserveHost On keeps the client Host';

# front3: RevProxyForwarded Off.
Apache::TestRequest::module('front3');
$res = GET '/o/echo/fwd3';
unlike $res->content, qr/^(?:X-Forwarded-|Forwarded:|Via:)/m, 'RevProxyForwarded Off adds nothing';
like $res->content, qr/^Host: 127\.0\.0\.1:\d+\r$/m, 'Host is the backend authority by default';
Apache::TestRequest::module('default');

# Response side: Connection-named and hop-by-hop fields are dropped,
# repeated fields (Set-Cookie) all pass, Date comes from the backend.
$res = GET '/o/headers?h=Connection:%20X-Resp-Hop&h=X-Resp-Hop:%20x&h=Keep-Alive:%20timeout=9'
         . '&h=Set-Cookie:%20a=1&h=Set-Cookie:%20b=2&h=X-Resp-E2E:%20yes'
         . '&h=Date:%20Tue,%2001%20Jan%202030%2000:00:00%20GMT';
ok !defined $res->header('X-Resp-Hop'), 'response field named by Connection dropped';
ok !defined $res->header('Keep-Alive'), 'response Keep-Alive dropped';
is $res->header('X-Resp-E2E'), 'yes', 'end-to-end response field kept';
is join('|', $res->header('Set-Cookie')), 'a=1|b=2', 'every Set-Cookie kept, in order';
is $res->header('Date'), 'Tue, 01 Jan 2030 00:00:00 GMT', 'backend Date kept';

# RevProxyPassReverse: Location / Content-Location pointing at the
# backend come back pointing at the front; others are left alone.
my $port = $ENV{RC_ORIGIN_PORT};
my $front = Apache::TestRequest::hostport();
Apache::TestRequest::user_agent(reset => 1, requests_redirectable => 0);
$res = GET "/o/status/302?h=Location:%20http://127.0.0.1:$port/new/place%3Fq=1"
         . "&h=Content-Location:%20http://127.0.0.1:$port/cl";
is $res->code, 302, 'redirect passed on';
is $res->header('Location'), "http://$front/o/new/place?q=1", 'Location rewritten to the front';
is $res->header('Content-Location'), "http://$front/o/cl", 'Content-Location rewritten';
$res = GET "/o/status/301?h=Location:%20http://elsewhere.example/x";
is $res->header('Location'), 'http://elsewhere.example/x', 'foreign Location untouched';

ok $log->check(), 'no unexpected errors in the log';
