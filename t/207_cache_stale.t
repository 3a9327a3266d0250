# Stale serving (RFC 5861): stale-while-revalidate answers at once with
# the stale copy and refreshes it once in the background; stale-if-error
# (from the response, the request, or RevCacheStaleIfError) serves the
# stale copy when the backend fails: reset, timeout, 5xx.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RcTest qw(origin_count parallel parse_raw);

plan tests => 29, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub cs   { $_[0]->header('Cache-Status') // '' }
sub timed { my $t0 = time; my $r = GET @_; return ($r, time - $t0) }

# stale-while-revalidate: a slow origin (1.5 s), a 3 s lifetime.
my $w = '/c/ctr/w1?ms=1500&cc=max-age%3D3,stale-while-revalidate%3D60';
GET $w;
sleep 4;
my ($r1, $t1) = timed($w);
is $r1->content, "w1 1\n", 'SWR: the stale copy';
like cs($r1), qr/^revcache; hit; ttl=-\d+; detail=stale-while-revalidate$/, 'SWR: Cache-Status says so';
ok $t1 < 1, sprintf 'SWR: answered at once (%.2fs), not after the slow origin', $t1;
# More requests while the refresh runs: from the cache, no new fetch.
my @r = map { parse_raw($_) } parallel(5, "GET $w HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
is scalar(grep { $_->{body} =~ /^w1 [12]\n$/ && $_->{h}{'cache-status'} =~ /^revcache; hit/ } @r), 5,
    'SWR: concurrent requests are answered from the cache';
sleep 2.5;
is seen('w1'), 2, 'SWR: exactly one background refresh';
$res = GET $w;
is $res->content, "w1 2\n", 'SWR: the refreshed copy is served';
like cs($res), qr/^revcache; hit/, 'SWR: a hit on the refreshed copy';

# SWR with a validator: the refresh is a conditional request.
my $v = '/c/ctr/w2?etag=1&cc=max-age%3D1,stale-while-revalidate%3D60&cc304=max-age%3D60';
GET $v;
sleep 2;
$res = GET $v;
like cs($res), qr/detail=stale-while-revalidate/, 'SWR + ETag: stale answer';
sleep 1;
$res = GET $v;
like cs($res), qr/^revcache; hit; ttl=(5\d|60)$/, 'SWR + ETag: the 304 refreshed the entry';
is $res->header('X-Count'), 2, 'SWR + ETag: headers of the 304 merged';
is $res->content, "w2 1\n", 'SWR + ETag: body kept';
is seen('w2'), 2, 'SWR + ETag: one refresh';

# stale-if-error from the response: 500, 503, reset.
for my $case (['e1', 'then=500', 500], ['e2', 'then=503', 503], ['e3', 'then=reset', 502]) {
    my ($n, $then, $st) = @$case;
    my $u = "/c/ctr/$n?after=1&$then&h=Cache-Control:max-age%3D1,stale-if-error%3D60";
    GET $u;
    sleep 1.5;
    $res = GET $u;
    is $res->content, "$n 1\n", "stale-if-error, backend $then: the stale copy";
    like cs($res), qr/fwd=stale; fwd-status=$st; detail=stale-if-error$/, "stale-if-error, $then: Cache-Status";
}
# Without stale-if-error the error goes through.
my $x = '/c/ctr/e4?after=1&then=500&h=Cache-Control:max-age%3D1';
GET $x;
sleep 1.5;
$res = GET $x;
is $res->code, 500, 'no stale-if-error: the 500';
# The request's own stale-if-error.
my $y = '/c/ctr/e5?after=1&then=503&h=Cache-Control:max-age%3D1';
GET $y;
sleep 1.5;
my $stale0 = stale_served();
$res = GET $y, 'Cache-Control' => 'stale-if-error=60';
is $res->content, "e5 1\n", 'request stale-if-error: the stale copy';
is stale_served() - $stale0, 1, 'the stale_served counter counted it';
# must-revalidate forbids it.
my $z = '/c/ctr/e6?after=1&then=500&h=Cache-Control:max-age%3D1,must-revalidate,stale-if-error%3D60';
GET $z;
sleep 1.5;
$res = GET $z;
is $res->code, 500, 'must-revalidate: no stale-if-error';

# RevCacheStaleIfError 60 and a backend that times out (timeout=1).
my $h = '/cshort/ctr/e7?after=1&then=hang&hangms=4000&h=Cache-Control:max-age%3D1';
GET $h;
sleep 1.5;
my ($rt, $tt) = timed($h);
is $rt->code, 200, 'timeout: 200 from the stale copy';
is $rt->content, "e7 1\n", 'timeout + RevCacheStaleIfError: the stale copy';
like cs($rt), qr/fwd=stale; fwd-status=504; detail=stale-if-error/, 'timeout: Cache-Status names the 504';
ok $tt < 3, sprintf 'timeout: after the 1s backend timeout (%.1fs)', $tt;
# ... and a backend reset in /cshort/ too.
my $k = '/cshort/ctr/e8?after=1&then=reset&h=Cache-Control:max-age%3D1';
GET $k;
sleep 1.5;
$res = GET $k;
is $res->content, "e8 1\n", 'RevCacheStaleIfError: reset backend, the stale copy';
cmp_ok seen('e8'), '>=', 2, 'reset: the origin was asked';

ok $log->check(qr/RC0020[67]/), 'no unexpected errors in the log (the failing backends aside)';

sub stale_served {
    my $j = (GET '/revcache-status?json')->content;
    return $j =~ /"stale_served": (\d+)/ ? $1 : -1;
}
