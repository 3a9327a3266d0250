# The cache's basic life: miss, store, hit with Age and Cache-Status,
# HEAD answered from a stored GET, and the request directives
# only-if-cached, no-cache (and Pragma), max-age, max-stale, min-fresh.
# Every case checks what the origin saw (its log) and what the client got.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET HEAD);
use lib 't/lib';
use RcTest qw(origin_count);

plan tests => 62, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub cs   { $_[0]->header('Cache-Status') // '' }

# A miss goes to the origin and is stored; the next request is a hit.
my $u = '/c/ctr/b1?h=Cache-Control:max-age%3D60';
$res = GET $u;
is $res->code, 200, 'miss: 200';
is $res->content, "b1 1\n", 'miss: body from the origin';
like cs($res), qr/^revcache; fwd=uri-miss; fwd-status=200; stored; ttl=(59|60)$/, 'miss: Cache-Status fwd=uri-miss, stored, ttl';
$res = GET $u;
is $res->code, 200, 'hit: 200';
is $res->content, "b1 1\n", 'hit: the stored body';
like cs($res), qr/^revcache; hit; ttl=(5\d|60)$/, 'hit: Cache-Status hit with ttl';
like $res->header('Age'), qr/^\d+$/, 'hit: Age header';
is $res->header('X-Count'), 1, 'hit: the stored origin headers';
is $res->header('Content-Length'), 5, 'hit: Content-Length of the stored body';
is seen('b1'), 1, 'one request reached the origin for two client requests';

# Age counts the origin's Age too (RFC 9111 4.2.3).
$res = GET '/c/ctr/b2?h=Cache-Control:max-age%3D600&h=Age:100';
is $res->header('Age'), 100, 'miss: the origin Age passed on';
$res = GET '/c/ctr/b2?h=Cache-Control:max-age%3D600&h=Age:100';
like cs($res), qr/^revcache; hit/, 'hit with an origin Age';
ok $res->header('Age') >= 100 && $res->header('Age') < 105, 'hit: Age includes the origin Age';
is seen('b2'), 1, 'Age: one origin request';

# HEAD is answered from the stored GET.
$res = HEAD $u;
is $res->code, 200, 'HEAD: 200';
is $res->header('Content-Length'), 5, 'HEAD: Content-Length of the stored GET';
is $res->content, '', 'HEAD: no body';
like cs($res), qr/^revcache; hit/, 'HEAD: a hit';
is seen('b1'), 1, 'HEAD did not reach the origin';
# A HEAD miss is fetched as a GET and stored (RevCacheConvertHead On,
# the default); the client gets the head only.
$res = HEAD '/c/ctr/b3?h=Cache-Control:max-age%3D60';
is $res->code, 200, 'HEAD miss: 200';
like cs($res), qr/fwd=uri-miss; fwd-status=200; stored; ttl=\d+; detail=head-as-get/,
    'HEAD miss: fetched as GET and stored';
is $res->header('Content-Length'), 5, 'HEAD miss: the GET\'s Content-Length';
is $res->content, '', 'HEAD miss: no body';
is origin_count(qr{method=GET uri=/ctr/b3}), 1, 'HEAD miss went to the origin as GET';
is origin_count(qr{method=HEAD uri=/ctr/b3}), 0, 'and not as HEAD';
$res = GET '/c/ctr/b3?h=Cache-Control:max-age%3D60';
like cs($res), qr/^revcache; hit/, 'the GET after it is a hit';
is $res->content, "b3 1\n", 'with the stored body';
# Not storable: the client still gets the head; the body is not read.
$res = HEAD '/c/ctr/hb5?h=Cache-Control:no-store';
is $res->code, 200, 'uncacheable HEAD miss: 200';
like cs($res), qr/fwd=uri-miss; fwd-status=200; detail=no-store/, 'uncacheable HEAD miss: not stored';
$res = HEAD '/c/ctr/hb5?h=Cache-Control:no-store';
is origin_count(qr{method=HEAD uri=/ctr/hb5}), 1,
    'the next HEAD (hit-for-miss marker) is forwarded as HEAD';
# RevCacheConvertHead Off: forwarded as HEAD, not stored.
$res = HEAD '/cheadoff/ctr/hb6?h=Cache-Control:max-age%3D60';
is $res->code, 200, 'RevCacheConvertHead Off: 200';
like cs($res), qr/fwd=uri-miss; detail=method/, 'RevCacheConvertHead Off: forwarded, not stored';
is origin_count(qr{method=HEAD uri=/ctr/hb6}), 1, 'RevCacheConvertHead Off: the origin saw a HEAD';

# only-if-cached: 504 on a miss, the stored response on a hit.
$res = GET '/c/ctr/b4?h=Cache-Control:max-age%3D60', 'Cache-Control' => 'only-if-cached';
is $res->code, 504, 'only-if-cached miss: 504';
like cs($res), qr/detail=only-if-cached/, 'only-if-cached: Cache-Status detail';
is seen('b4'), 0, 'only-if-cached: nothing reached the origin';
$res = GET $u, 'Cache-Control' => 'only-if-cached';
is $res->code, 200, 'only-if-cached hit: 200';
is $res->content, "b1 1\n", 'only-if-cached hit: stored body';

# Request no-cache (and Pragma: no-cache) go to the origin; the answer
# replaces the stored one.
$res = GET $u, 'Cache-Control' => 'no-cache';
is $res->content, "b1 2\n", 'request no-cache: a fresh answer';
like cs($res), qr/^revcache; fwd=request; fwd-status=200; stored/, 'request no-cache: fwd=request';
is seen('b1'), 2, 'request no-cache reached the origin';
$res = GET $u;
is $res->content, "b1 2\n", 'the new answer replaced the stored one';
$res = GET $u, 'Pragma' => 'no-cache';
is $res->content, "b1 3\n", 'Pragma: no-cache goes to the origin';
is seen('b1'), 3, 'Pragma: no-cache reached the origin';

# Request max-age: the stored entry is 100 s old (origin Age).
$res = GET '/c/ctr/b2?h=Cache-Control:max-age%3D600&h=Age:100', 'Cache-Control' => 'max-age=200';
like cs($res), qr/^revcache; hit/, 'request max-age above the age: hit';
$res = GET '/c/ctr/b2?h=Cache-Control:max-age%3D600&h=Age:100', 'Cache-Control' => 'max-age=50';
like cs($res), qr/^revcache; fwd=request/, 'request max-age below the age: forwarded';
is $res->content, "b2 2\n", 'request max-age: a new answer';
is seen('b2'), 2, 'request max-age: one more origin request';

# max-stale: a stale entry is served when the client accepts it.
my $s = '/c/ctr/b5?h=Cache-Control:max-age%3D1';
GET $s;
sleep 2;
$res = GET $s, 'Cache-Control' => 'max-stale=60';
is $res->content, "b5 1\n", 'max-stale: the stale copy';
like cs($res), qr/^revcache; hit; ttl=-\d+; detail=max-stale$/, 'max-stale: Cache-Status says so';
$res = GET $s, 'Cache-Control' => 'max-stale';
is $res->content, "b5 1\n", 'max-stale without a value: any staleness';
is seen('b5'), 1, 'max-stale: no origin request';
$res = GET $s;
is $res->content, "b5 2\n", 'stale without max-stale: fetched again';
like cs($res), qr/^revcache; fwd=stale; fwd-status=200; stored/, 'stale: fwd=stale';

# min-fresh: the entry must stay fresh that much longer.
my $f = '/c/ctr/b6?h=Cache-Control:max-age%3D60';
GET $f;
$res = GET $f, 'Cache-Control' => 'min-fresh=10';
like cs($res), qr/^revcache; hit/, 'min-fresh within the lifetime: hit';
$res = GET $f, 'Cache-Control' => 'min-fresh=100';
like cs($res), qr/^revcache; fwd=request/, 'min-fresh beyond the lifetime: forwarded';
is seen('b6'), 2, 'min-fresh: one more origin request';

# The query string is part of the key; other routes are not cached.
$res = GET '/c/ctr/b1?h=Cache-Control:max-age%3D60&other=1';
is $res->content, "b1 4\n", 'another query string: another entry';
$res = GET '/o/ctr/b7?h=Cache-Control:max-age%3D60';
$res = GET '/o/ctr/b7?h=Cache-Control:max-age%3D60';
is $res->content, "b7 2\n", 'a route without RevCacheEnable is not cached';
ok !defined $res->header('Cache-Status'), 'no Cache-Status where the cache is off';

# The counters show the work.
$res = GET '/revcache-status?json';
like $res->content, qr/"hits": [1-9]/, 'revcache-status counts hits';

ok $log->check, 'no unexpected errors in the log';
