# Invalidation by successful unsafe methods (target URI, Location and
# Content-Location on the same host), PURGE of a URL and by Surrogate-Key
# tag, and httpd's access control on PURGE.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET POST PUT);
use lib 't/lib';
use RcTest qw(origin_count);

plan tests => 31, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub cs   { $_[0]->header('Cache-Status') // '' }
sub req {
    my ($method, $url, @h) = @_;
    my $ua = Apache::TestRequest::user_agent();
    return $ua->request(HTTP::Request->new($method => Apache::TestRequest::resolve_url($url), [@h]));
}
sub cached {
    my ($u) = @_;
    my $r = GET $u, 'Cache-Control' => 'only-if-cached';
    return $r->code == 200;
}

my $ma = 'h=Cache-Control:max-age%3D60';

# A successful POST invalidates its target.
my $u = "/c/ctr/i1?$ma";
GET $u;
ok cached($u), 'stored';
$res = POST $u, content => 'x';
is $res->code, 200, 'POST passed through';
ok !cached($u), 'POST invalidated the target URI';
$res = GET $u;
is $res->content, "i1 3\n", 'the next GET went to the origin';
# PUT, DELETE, PATCH too.
for my $m (qw(PUT DELETE PATCH)) {
    GET $u;
    ok cached($u), "stored again before $m";
    req($m, $u);
    ok !cached($u), "$m invalidated the target URI";
}

# Location and Content-Location of the same host are invalidated; another
# host's are not. (RevProxyPassReverse maps the backend's own URLs.)
my $port = Apache::Test::vars('port');
my ($t2, $t3, $t4) = map { "/c/ctr/$_?$ma" } qw(i2 i3 i4);
GET $_ for $t2, $t3, $t4;
ok cached($t2) && cached($t3) && cached($t4), 'three entries stored';
(my $enc3 = $t3) =~ s/([?%=:])/sprintf '%%%02X', ord $1/ge;
my $origin = RcTest::origin_port();
(my $enc4 = "http://127.0.0.1:$origin/ctr/i4?$ma") =~ s/([?%=:\/])/sprintf '%%%02X', ord $1/ge;
$res = POST "/c/ctr/i5?h=Location:$enc3&h=Content-Location:$enc4", content => 'x';
is $res->header('Content-Location'), "http://localhost:$port/c/ctr/i4?$ma", 'Content-Location mapped back to the front';
ok !cached($t3), 'POST invalidated its Location';
ok !cached($t4), 'POST invalidated its Content-Location (backend URL mapped to ours)';
ok cached($t2), 'an unrelated entry stays';
$res = POST "/c/ctr/i6?h=Location:http%3A%2F%2Fother.example%2Fc%2Fctr%2Fi2%3F$ma", content => 'x';
ok cached($t2), 'a Location on another host is not invalidated';

# A failed unsafe request invalidates nothing.
my $f = "/c/ctr/i7?after=1&then=500&$ma";
GET $f;
$res = POST $f, content => 'x';
is $res->code, 500, 'POST failed with 500';
ok cached($f), 'a failed POST does not invalidate';

# PURGE of a URL drops it (all its Vary variants).
my $p = "/c/ctr/p1?h=Vary:Accept-Language&$ma";
GET $p, 'Accept-Language' => 'en';
GET $p, 'Accept-Language' => 'de';
$res = req(PURGE => $p);
is $res->code, 200, 'PURGE: 200';
like $res->content, qr/^\{"purged": 3\}$/, 'PURGE: two variants and the Vary record dropped';
is $res->header('Content-Type'), 'application/json', 'PURGE answers JSON';
$res = GET $p, 'Accept-Language' => 'en';
like cs($res), qr/fwd=uri-miss/, 'after PURGE: a miss';
$res = req(PURGE => "/c/ctr/nothing-here");
is $res->code, 404, 'PURGE of nothing: 404';
is seen('p1'), 3, 'PURGE itself never reaches the origin';

# PURGE by tag: every entry labelled with it (Surrogate-Key).
my ($g1, $g2, $g3) = ("/c/ctr/g1?h=Surrogate-Key:news%20sport&$ma",
                      "/c/ctr/g2?h=Surrogate-Key:sport&$ma",
                      "/c/ctr/g3?h=Surrogate-Key:weather&$ma");
$res = GET $g1;
ok !defined $res->header('Surrogate-Key'), 'Surrogate-Key is not sent to clients';
GET $_ for $g2, $g3;
$res = req(PURGE => '/c/anything', 'X-Purge-Tag' => 'sport');
like $res->content, qr/"purged": 2/, 'PURGE by tag: two entries';
ok !cached($g1) && !cached($g2), 'tagged entries dropped';
ok cached($g3), 'other tags stay';

# Access control applies to PURGE.
my $d = "/cnopurge/ctr/p2?$ma";
GET $d;
$res = req(PURGE => $d);
is $res->code, 403, 'PURGE denied by Require: 403';
ok cached($d), 'a denied PURGE drops nothing';

ok $log->check(qr/AH01630/), 'no unexpected errors in the log (the denied PURGE aside)';
