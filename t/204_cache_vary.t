# Vary: one entry per variant, matched on the normalised values of the
# named request headers; Vary: * never matches; RevCacheKeyHeaders and
# RevCacheIgnoreQueryString shape the key.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET);
use lib 't/lib';
use RcTest qw(origin_count);

plan tests => 24, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub cs   { $_[0]->header('Cache-Status') // '' }

my $u = '/c/ctr/y1?echo=Accept-Language&h=Vary:Accept-Language&h=Cache-Control:max-age%3D60';
$res = GET $u, 'Accept-Language' => 'en';
is $res->content, "y1 1 en\n", 'first variant from the origin';
like cs($res), qr/fwd=uri-miss; fwd-status=200; stored/, 'first variant: uri-miss, stored';
$res = GET $u, 'Accept-Language' => 'fr';
is $res->content, "y1 2 fr\n", 'second variant from the origin';
like cs($res), qr/fwd=vary-miss; fwd-status=200; stored/, 'second variant: vary-miss';
$res = GET $u, 'Accept-Language' => 'en';
is $res->content, "y1 1 en\n", 'first variant from the cache';
like cs($res), qr/^revcache; hit/, 'first variant: hit';
$res = GET $u, 'Accept-Language' => 'fr';
is $res->content, "y1 2 fr\n", 'second variant from the cache';
$res = GET $u;
is $res->content, "y1 3 \n", 'no Accept-Language: its own variant';
$res = GET $u;
is $res->content, "y1 3 \n", 'no Accept-Language: from the cache';
$res = GET $u, 'Accept-Language' => 'en, fr';
is $res->content, "y1 4 en, fr\n", 'a list is another variant';
$res = GET $u, 'Accept-Language' => "en ,  fr";
is $res->content, "y1 4 en, fr\n", 'whitespace around commas is normalised';
is seen('y1'), 4, 'four variants, four origin requests';

# Accept-Encoding: codings sorted, case and q-values normalised.
my $e = '/c/ctr/y2?echo=Accept-Encoding&h=Vary:Accept-Encoding&h=Cache-Control:max-age%3D60';
$res = GET $e, 'Accept-Encoding' => 'gzip, br';
is $res->content, "y2 1 gzip, br\n", 'Accept-Encoding variant stored';
$res = GET $e, 'Accept-Encoding' => 'BR;q=0.5,GZIP';
is $res->content, "y2 1 gzip, br\n", 'same codings in another order and case: same variant';
$res = GET $e, 'Accept-Encoding' => 'gzip, br, deflate;q=0';
is $res->content, "y2 1 gzip, br\n", 'a coding with q=0 does not count';
is seen('y2'), 1, 'Accept-Encoding: one origin request';

# Vary: * is never stored.
GET '/c/ctr/y3?h=Vary:*&h=Cache-Control:max-age%3D60';
$res = GET '/c/ctr/y3?h=Vary:*&h=Cache-Control:max-age%3D60';
like cs($res), qr/detail=vary-star/, 'Vary: * not stored';
is seen('y3'), 2, 'Vary: * both reached the origin';

# RevCacheKeyHeaders X-Device: a key per device; RevCacheIgnoreQueryString.
my $k = '/ckey/ctr/y4?echo=X-Device&h=Cache-Control:max-age%3D60';
$res = GET $k, 'X-Device' => 'phone';
is $res->content, "y4 1 phone\n", 'key header: first value';
$res = GET $k, 'X-Device' => 'tv';
is $res->content, "y4 2 tv\n", 'key header: another value, another entry';
$res = GET "$k&other=1", 'X-Device' => 'phone';
is $res->content, "y4 1 phone\n", 'RevCacheIgnoreQueryString: another query, same entry';
$res = Apache::TestRequest::user_agent()->request(HTTP::Request->new(PURGE => Apache::TestRequest::resolve_url($k)));
like $res->content, qr/"purged": 2/, 'PURGE of the URL drops every key-header variant';
$res = GET $k, 'X-Device' => 'tv';
is $res->content, "y4 3 tv\n", 'after the purge: from the origin';

ok $log->check, 'no unexpected errors in the log';
