# What is stored and for how long: no-store (response and request),
# private, Authorization, Set-Cookie, status codes, s-maxage > max-age >
# Expires, heuristic freshness from Last-Modified, RevCacheDefaultTTL
# (off by default, on in a <Location>), RevCacheHeuristicFraction 0.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET);
use HTTP::Date qw(time2str);
use lib 't/lib';
use RcTest qw(origin_count raw parse_raw);

plan tests => 47, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub cs   { $_[0]->header('Cache-Status') // '' }
sub twice {
    my ($u, @h) = @_;
    my $a = GET $u, @h;
    my $b = GET $u, @h;
    return ($a, $b);
}

my ($a, $b);

# Response no-store / private: never stored.
($a, $b) = twice('/c/ctr/s1?h=Cache-Control:no-store,max-age%3D60');
like cs($a), qr/detail=no-store$/, 'response no-store: not stored';
is $b->content, "s1 2\n", 'response no-store: the second request went to the origin';
($a, $b) = twice('/c/ctr/s2?h=Cache-Control:private,max-age%3D60');
like cs($a), qr/detail=private$/, 'private: not stored';
is seen('s2'), 2, 'private: both requests reached the origin';

# Request no-store: that response is not stored.
$a = GET '/c/ctr/s3?h=Cache-Control:max-age%3D60', 'Cache-Control' => 'no-store';
like cs($a), qr/detail=no-store$/, 'request no-store: not stored';
$b = GET '/c/ctr/s3?h=Cache-Control:max-age%3D60';
like cs($b), qr/fwd=uri-miss; fwd-status=200; stored/, 'request no-store: the next request is a miss';
$b = GET '/c/ctr/s3?h=Cache-Control:max-age%3D60', 'Cache-Control' => 'no-store';
like cs($b), qr/^revcache; hit/, 'request no-store may be answered from the cache';

# Authorization: stored only when the response says it may be shared.
($a, $b) = twice('/c/ctr/s4?h=Cache-Control:max-age%3D60', Authorization => 'Basic dTpw');
like cs($a), qr/detail=auth$/, 'Authorization + max-age: not stored';
is seen('s4'), 2, 'Authorization + max-age: both reached the origin';
($a, $b) = twice('/c/ctr/s5?h=Cache-Control:public,max-age%3D60', Authorization => 'Basic dTpw');
like cs($b), qr/^revcache; hit/, 'Authorization + public: stored';
($a, $b) = twice('/c/ctr/s6?h=Cache-Control:s-maxage%3D60', Authorization => 'Basic dTpw');
like cs($b), qr/^revcache; hit/, 'Authorization + s-maxage: stored';
($a, $b) = twice('/c/ctr/s7?h=Cache-Control:max-age%3D60,must-revalidate', Authorization => 'Basic dTpw');
like cs($b), qr/^revcache; hit/, 'Authorization + must-revalidate: stored';
is seen('s5') + seen('s6') + seen('s7'), 3, 'shareable responses to Authorization: one origin request each';

# Set-Cookie: not stored (the cookie is for the one client that asked).
($a, $b) = twice('/c/ctr/s8?h=Cache-Control:max-age%3D60&h=Set-Cookie:sid%3D42');
like cs($a), qr/detail=set-cookie$/, 'Set-Cookie: not stored';
is $a->header('Set-Cookie'), 'sid=42', 'Set-Cookie: the client still gets its cookie';
is seen('s8'), 2, 'Set-Cookie: both reached the origin';

# Status codes: heuristically cacheable ones with freshness are stored,
# others only with explicit freshness; 206 never.
($a, $b) = twice('/c/status/404?h=Cache-Control:max-age%3D60');
is $b->code, 404, '404 with max-age: the 404 again';
like cs($b), qr/^revcache; hit/, '404 with max-age: from the cache';
($a, $b) = twice('/c/status/404?x=nofresh');
like cs($b), qr/detail=no-freshness$/, '404 without freshness and validator: not stored';
# (raw requests: LWP would follow the redirects)
sub raw_get {
    parse_raw(raw("GET $_[0] HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
}
raw_get('/c/status/302?h=Cache-Control:max-age%3D60&h=Location:/elsewhere');
my $r = raw_get('/c/status/302?h=Cache-Control:max-age%3D60&h=Location:/elsewhere');
is $r->{code}, 302, '302 with max-age: 302 again';
like $r->{h}{'cache-status'}, qr/^revcache; hit/, '302 with max-age: from the cache';
raw_get('/c/status/302?h=Location:/elsewhere&x=nofresh');
$r = raw_get('/c/status/302?h=Location:/elsewhere&x=nofresh');
like $r->{h}{'cache-status'}, qr/fwd=uri-miss/, '302 without freshness: not stored';
($a, $b) = twice('/c/status/500?h=Cache-Control:max-age%3D60');
like cs($b), qr/^revcache; hit/, '500 with explicit max-age: stored (RFC 9111 3)';
($a, $b) = twice('/c/status/206?h=Cache-Control:max-age%3D60&h=Content-Range:bytes%200-9/100');
like cs($a), qr/detail=status$/, '206: never stored';
is origin_count(qr{uri=/status/206}), 2, '206: both reached the origin';

# Freshness lifetime: s-maxage > max-age > Expires - Date.
$a = GET '/c/ctr/f1?h=Cache-Control:max-age%3D60,s-maxage%3D5';
like cs($a), qr/stored; ttl=[45]$/, 's-maxage wins over max-age';
my $exp = time2str(time + 100);
(my $e = $exp) =~ s/ /%20/g;
$a = GET "/c/ctr/f2?h=Cache-Control:max-age%3D60&h=Expires:$e";
like cs($a), qr/stored; ttl=(59|60)$/, 'max-age wins over Expires';
$a = GET "/c/ctr/f3?h=Expires:$e";
like cs($a), qr/stored; ttl=(9[89]|100)$/, 'Expires - Date';
$b = GET "/c/ctr/f3?h=Expires:$e";
like cs($b), qr/^revcache; hit/, 'Expires: from the cache';
(my $past = time2str(time - 100)) =~ s/ /%20/g;
$a = GET "/c/ctr/f4?h=Expires:$past";
like cs($a), qr/detail=no-freshness$/, 'Expires in the past: not stored';
$a = GET "/c/ctr/f5?h=Expires:0";
like cs($a), qr/detail=no-freshness$/, 'invalid Expires means expired: not stored';

# Heuristic freshness: 10% of Date - Last-Modified by default.
my $lm = time - 10000;
$a = GET "/c/ctr/h1?lm=$lm";
like cs($a), qr/stored; ttl=(99\d|1000)$/, 'heuristic: 10% of the age of Last-Modified';
$b = GET "/c/ctr/h1?lm=$lm";
like cs($b), qr/^revcache; hit/, 'heuristic: served from the cache';
is seen('h1'), 1, 'heuristic: one origin request';
# RevCacheHeuristicFraction 0: no heuristic lifetime, but the validator
# still makes the entry worth keeping: the next request revalidates.
$a = GET "/cnoheur/ctr/h2?lm=$lm";
like cs($a), qr/stored; ttl=(0|-1)$/, 'heuristic off: stored with no lifetime (has a validator)';
$b = GET "/cnoheur/ctr/h2?lm=$lm";
like cs($b), qr/fwd=stale; fwd-status=304/, 'heuristic off: revalidated with If-Modified-Since';
is $b->content, "h2 1\n", 'heuristic off: 304 serves the stored body';

# RevCacheDefaultTTL: off by default, 30s in /cttl/.
($a, $b) = twice('/c/ctr/d1');
like cs($a), qr/detail=no-freshness$/, 'no freshness information: not stored by default';
is seen('d1'), 2, 'default TTL off: both reached the origin';
($a, $b) = twice('/cttl/ctr/d2');
like cs($a), qr/stored; ttl=(29|30)$/, 'RevCacheDefaultTTL 30 in a <Location>: stored for 30s';
like cs($b), qr/^revcache; hit/, 'default TTL: from the cache';
is seen('d2'), 1, 'default TTL: one origin request';
($a, $b) = twice("/cttl/ctr/d3?h=Cache-Control:max-age%3D5");
like cs($a), qr/stored; ttl=[45]$/, 'default TTL does not override explicit freshness';
($a, $b) = twice("/cttl/ctr/d4?lm=$lm");
like cs($a), qr/stored; ttl=(99\d|1000)$/, 'default TTL does not override heuristic freshness';

# Stored copies never carry Set-Cookie; Age is recomputed.
$a = GET '/c/ctr/s9?h=Cache-Control:max-age%3D60,public&h=X-Keep:1';
$b = GET '/c/ctr/s9?h=Cache-Control:max-age%3D60,public&h=X-Keep:1';
is $b->header('X-Keep'), 1, 'end-to-end headers are stored';
ok !defined $b->header('Connection') || $b->header('Connection') !~ /X-Keep/i, 'hop-by-hop not stored';

ok $log->check, 'no unexpected errors in the log';
