# RevCacheQuickHandler: hits served in httpd's quick_handler hook, before
# translate_name, map_to_storage and access control. Two vhosts with the
# same routes: cquick (On) and cqoff (Off). A hit served by the quick
# handler logs "RC00306: cache: hit KEY (N bytes, quick handler)".
# Checks: hits (GET, HEAD, 304 to a conditional, Range, max-stale),
# misses, stale entries, no-cache requests and hit-for-miss markers going
# the normal way (the quick lookup handed on), PURGE
# and its Require, the counters (one lookup per request either way; a
# max-stale hit counted once as stale served), the insert_filter hook run
# for quick hits (mod_headers), normalised paths, HTTP/2, and the
# documented trade-off: a <Location>'s Require is not applied to a hit
# served by the quick handler, while with Off it is.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest ();
use HTTP::Request ();
use JSON::PP ();
use lib 't/lib';
use RcTest qw(origin_count raw parse_raw front_port);

plan tests => 99, need_lwp;

my $log = RcTest::LogWatch->new;
my $t = "q$$";          # this run's names at the origin
my $ma = 'h=Cache-Control:max-age%3D60';
my $ua = Apache::TestRequest::user_agent(reset => 1, keep_alive => 1);

sub url  { my ($vh, $p) = @_; 'http://127.0.0.1:' . front_port($vh eq 'default' ? undef : $vh) . $p }
sub req {
    my ($vh, $method, $p, @h) = @_;
    return $ua->request(HTTP::Request->new($method => url($vh, $p), [@h]));
}
sub get  { req($_[0], 'GET', @_[1 .. $#_]) }
sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub cs   { $_[0]->header('Cache-Status') // '' }

# The cache's counters (server-wide, in shared memory).
sub counters {
    my $res = get('default', '/revcache-status?json');
    my $j = JSON::PP->new->decode($res->content);
    return { map { $_ => $j->{cache}{$_} } qw(lookups hits misses stale_served) };
}
sub delta {
    my ($a, $b) = @_;
    return join ' ', map { "$_=" . ($b->{$_} - $a->{$_}) } qw(lookups hits misses);
}

# "(quick handler)" hit lines logged since $w for a key ending in $re.
sub quick_hits {
    my ($w, $re) = @_;
    return scalar grep { /RC0030[56]: cache: (?:hit|304 from the stored) \S*$re.*quick handler/ } $w->lines;
}
sub any_hits {
    my ($w, $re) = @_;
    return scalar grep { /RC0030[56]: cache: (?:hit|304 from the stored) \S*$re/ } $w->lines;
}

my ($res, $w, $c0, $c1);

# --- a miss goes the normal way, is stored; the next GET is a quick hit ---
my $h1 = "/q/ctr/${t}h1?$ma";
$c0 = counters();
$w = RcTest::LogWatch->new;
$res = get('cquick', $h1);
is $res->code, 200, 'miss: 200';
is $res->content, "${t}h1 1\n", 'miss: the origin body';
like cs($res), qr/^revcache; fwd=uri-miss; fwd-status=200; stored/, 'miss: stored by the handler';
$c1 = counters();
is delta($c0, $c1), 'lookups=1 hits=0 misses=1', 'miss: one lookup, one miss (the quick lookup is handed on, not repeated)';
is quick_hits($w, "/q/ctr/${t}h1"), 0, 'miss: nothing served by the quick handler';

$w = RcTest::LogWatch->new;
$c0 = counters();
$res = get('cquick', $h1);
is $res->code, 200, 'hit: 200';
is $res->content, "${t}h1 1\n", 'hit: the stored body';
like cs($res), qr/^revcache; hit; ttl=(5\d|60)$/, 'hit: Cache-Status hit with ttl';
like $res->header('Age') // '', qr/^\d+$/, 'hit: Age';
is $res->header('Content-Length'), length("${t}h1 1\n"), 'hit: Content-Length';
is $res->header('X-Count'), 1, 'hit: the stored origin headers';
is $res->header('X-Rc-Filter'), 'quick', 'hit: mod_headers (insert_filter hook) applied to the quick hit';
is delta($c0, counters()), 'lookups=1 hits=1 misses=0', 'hit: one lookup, one hit';
is quick_hits($w, "/q/ctr/${t}h1"), 1, 'hit: served by the quick handler';
is seen("${t}h1"), 1, 'hit: the origin saw one request for two';

# --- HEAD, a 304 to a client conditional, Range: quick hits too ---------
$w = RcTest::LogWatch->new;
$res = req('cquick', 'HEAD', $h1);
is $res->code, 200, 'HEAD hit: 200';
is $res->header('Content-Length'), length("${t}h1 1\n"), 'HEAD hit: Content-Length of the stored GET';
is $res->content, '', 'HEAD hit: no body';
like cs($res), qr/^revcache; hit/, 'HEAD hit: Cache-Status hit';
is quick_hits($w, "/q/ctr/${t}h1"), 1, 'HEAD hit: served by the quick handler';

my $e1 = "/q/ctr/${t}e1?etag=1&cc=max-age%3D60";
$res = get('cquick', $e1);
is $res->header('ETag'), "\"${t}e1-1\"", 'conditional: stored with its ETag';
$w = RcTest::LogWatch->new;
$res = get('cquick', $e1, 'If-None-Match' => "\"${t}e1-1\"");
is $res->code, 304, 'If-None-Match on a hit: 304';
like cs($res), qr/^revcache; hit/, '304: Cache-Status hit';
is $res->header('ETag'), "\"${t}e1-1\"", '304: the stored ETag';
is quick_hits($w, "/q/ctr/${t}e1"), 1, '304: answered by the quick handler';
# If-Match is the origin's to decide: the normal path forwards it.
$w = RcTest::LogWatch->new;
$c0 = counters();
$res = get('cquick', $e1, 'If-Match' => '"other"');
like cs($res), qr/^revcache; fwd=request; detail=conditional/, 'If-Match: forwarded by the handler';
is delta($c0, counters()), 'lookups=1 hits=1 misses=0', 'If-Match: one lookup (handed on)';
is quick_hits($w, "/q/ctr/${t}e1"), 0, 'If-Match: not served by the quick handler';
is seen("${t}e1"), 2, 'If-Match reached the origin';

my $rg = "/q/length?size=1000&$ma&t=$t";
get('cquick', $rg);
$w = RcTest::LogWatch->new;
$res = get('cquick', $rg, Range => 'bytes=10-19');
is $res->code, 206, 'Range on a quick hit: 206';
is $res->content, '0123456789', 'Range: the bytes asked for';
is $res->header('Content-Range'), 'bytes 10-19/1000', 'Range: Content-Range';
like cs($res), qr/^revcache; hit/, 'Range: from the cache';
is quick_hits($w, '/q/length'), 1, "Range: served by the quick handler (httpd's byterange filter is there)";
is origin_count(qr{uri=/length\?size=1000&\S*t=$t}), 1, 'Range: the origin was asked once';

# --- normalised paths reach the same entry --------------------------------
my $port = front_port('cquick');
for my $p ("/q/x/../ctr/${t}h1?$ma", "/q/%63tr/${t}h1?$ma", "/q//ctr/${t}h1?$ma") {
    $w = RcTest::LogWatch->new;
    my $r = parse_raw(scalar raw("GET $p HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n\r\n",
                                 module => 'cquick'));
    is "$r->{code} $r->{body}", "200 ${t}h1 1\n", "$p: the entry of /q/ctr/${t}h1";
    is quick_hits($w, "/q/ctr/${t}h1"), 1, "$p: a quick hit";
}
is seen("${t}h1"), 1, 'normalised paths: no origin request';

# --- requests the quick handler leaves to the normal path -----------------
# Request no-cache: revalidated (here: a new answer) by the handler.
$w = RcTest::LogWatch->new;
$c0 = counters();
$res = get('cquick', $h1, 'Cache-Control' => 'no-cache');
is $res->content, "${t}h1 2\n", 'request no-cache: a new answer';
like cs($res), qr/^revcache; fwd=request; fwd-status=200; stored/, 'request no-cache: fwd=request';
is delta($c0, counters()), 'lookups=1 hits=1 misses=0', 'request no-cache: one lookup';
is any_hits($w, "/q/ctr/${t}h1"), 0, 'request no-cache: not served from the cache';
$res = get('cquick', $h1);
is $res->content, "${t}h1 2\n", 'the new answer is the next quick hit';

# A stale entry is revalidated by the handler (If-None-Match, 304); the
# refreshed entry is a quick hit again. cqoff gets the same requests: its
# counters must move exactly as cquick's.
my $v1 = "/q/ctr/${t}v1?etag=1&cc=max-age%3D1&cc304=max-age%3D60";
my $v2 = "/q/ctr/${t}v2?etag=1&cc=max-age%3D1&cc304=max-age%3D60";
my $ms = "/q/ctr/${t}ms?h=Cache-Control:max-age%3D1";
get('cquick', $v1);
get('cqoff', $v2);
get('cquick', $ms);
sleep 2;
my %d;
for my $case (['cquick', $v1, "${t}v1"], ['cqoff', $v2, "${t}v2"]) {
    my ($vh, $u, $n) = @$case;
    $w = RcTest::LogWatch->new;
    $c0 = counters();
    $res = get($vh, $u);
    $c1 = counters();
    is $res->content, "$n 1\n", "$vh stale: the stored body after revalidation";
    like cs($res), qr/^revcache; fwd=stale; fwd-status=304; ttl=(5\d|60)$/, "$vh stale: revalidated, 304";
    is seen($n), 2, "$vh stale: one conditional request";
    is quick_hits($w, "/q/ctr/$n"), 0, "$vh stale: not served by the quick handler";
    $d{$vh} = delta($c0, $c1);
    $res = get($vh, $u);
    like cs($res), qr/^revcache; hit/, "$vh: fresh again after the 304";
    $d{$vh} .= ' / ' . delta($c1, counters());
}
is $d{cquick}, 'lookups=1 hits=1 misses=0 / lookups=1 hits=1 misses=0', 'stale then hit: one lookup each';
is $d{cquick}, $d{cqoff}, 'the counters move as with RevCacheQuickHandler Off';

# A stale entry the client accepts (max-stale) needs no origin: a quick hit.
$w = RcTest::LogWatch->new;
$c0 = counters();
$res = get('cquick', $ms, 'Cache-Control' => 'max-stale=60');
$c1 = counters();
is $res->content, "${t}ms 1\n", 'max-stale: the stale copy';
like cs($res), qr/^revcache; hit; ttl=-\d+; detail=max-stale$/, 'max-stale: Cache-Status says so';
is quick_hits($w, "/q/ctr/${t}ms"), 1, 'max-stale: served by the quick handler';
is $c1->{stale_served} - $c0->{stale_served}, 1, 'max-stale: counted once as stale served';
is seen("${t}ms"), 1, 'max-stale: no origin request';

# --- a hit-for-miss marker found by the quick lookup is handed on too ------
# (no new marker stored, nobody waits for another's fetch)
my $hfm = "/q/ctr/${t}hfm?h=Cache-Control:no-store&ms=1000";
$w = RcTest::LogWatch->new;
get('cquick', $hfm);
is scalar(grep { /RC00334: cache: hit-for-miss marker for \S+${t}hfm\S* stored/ } $w->lines), 1,
   'hit-for-miss: an uncacheable answer leaves a marker';
$w = RcTest::LogWatch->new;
my @r = map { parse_raw($_) } RcTest::parallel(4,
    "GET $hfm HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n\r\n",
    module => 'cquick', timeout => 20);
is scalar(grep { $_->{code} == 200 } @r), 4, 'hit-for-miss: four concurrent requests answered';
is scalar(grep { ($_->{h}{'cache-status'} // '') =~ /collapsed/ } @r), 0, 'hit-for-miss: none waited for another fetch';
is scalar(grep { /RC00334/ } $w->lines), 0, 'hit-for-miss: the marker was seen (no new one stored)';
is seen("${t}hfm"), 5, 'hit-for-miss: every request reached the origin';

# --- PURGE is never served by the quick handler: Require applies ----------
$res = req('cquick', 'PURGE', $h1);
is $res->code, 403, 'PURGE without X-Rc-Purger: 403 (Require in <Limit PURGE>)';
$res = get('cquick', $h1);
like cs($res), qr/^revcache; hit/, 'a refused PURGE drops nothing';
$res = req('cquick', 'PURGE', $h1, 'X-Rc-Purger' => 'yes');
is $res->code, 200, 'PURGE allowed: 200';
like $res->content, qr/^\{"purged": 1\}$/, 'PURGE: one entry dropped';
$res = get('cquick', $h1);
like cs($res), qr/^revcache; fwd=uri-miss/, 'after PURGE: a miss';
is $res->content, "${t}h1 3\n", 'after PURGE: the origin answered';

# --- a route of the server (RevProxyPass outside <Location>) ---------------
my $s1 = "/qs/ctr/${t}s1?$ma";
get('cquick', $s1);
$w = RcTest::LogWatch->new;
$res = get('cquick', $s1);
is $res->content, "${t}s1 1\n", 'server route: the stored body';
is quick_hits($w, "/qs/ctr/${t}s1"), 1, 'server route: a quick hit';
is $res->header('X-Rc-Filter'), undef, 'server route: no Header of another <Location>';

# --- RevCacheQuickHandler Off: the same routes, hits in the handler -------
my $o1 = "/q/ctr/${t}o1?$ma";
get('cqoff', $o1);
$w = RcTest::LogWatch->new;
$res = get('cqoff', $o1);
like cs($res), qr/^revcache; hit/, 'Off: a hit';
is $res->content, "${t}o1 1\n", 'Off: the stored body';
is quick_hits($w, "/q/ctr/${t}o1"), 0, 'Off: not served by the quick handler';
is any_hits($w, "/q/ctr/${t}o1"), 1, 'Off: served by the handler';
is seen("${t}o1"), 1, 'Off: one origin request';

# --- the trade-off: Require of a <Location> is not applied to quick hits --
# /q/ctr/guarded/ requires X-Rc-Prime: yes (an access rule as any other).
for my $vh (qw(cquick cqoff)) {
    my $g = "/q/ctr/guarded/$t$vh?$ma";
    $res = get($vh, $g);
    is $res->code, 403, "$vh: a miss under Require is refused (403)";
    $res = get($vh, $g, 'X-Rc-Prime' => 'yes');
    is $res->code, 200, "$vh: allowed, it is fetched";
    like cs($res), qr/stored/, "$vh: and stored";
}
$w = RcTest::LogWatch->new;
$res = get('cquick', "/q/ctr/guarded/${t}cquick?$ma");
is $res->code, 200, 'On: the stored entry is served WITHOUT the access check (documented trade-off)';
like cs($res), qr/^revcache; hit/, 'On: as a hit';
is quick_hits($w, "/q/ctr/guarded/${t}cquick"), 1, 'On: by the quick handler';
$res = get('cqoff', "/q/ctr/guarded/${t}cqoff?$ma");
is $res->code, 403, 'Off: the same request is refused (403)';
# A stale entry there goes through the normal path, so Require applies.
$res = get('cquick', "/q/ctr/guarded/${t}cquick?$ma", 'Cache-Control' => 'no-cache');
is $res->code, 403, 'On: a request the cache cannot answer as is meets Require (403)';

# --- HTTP/2 (h2c): a quick hit through mod_http2, byte-exact ---------------
SKIP: {
    my $curl = `sh -c 'command -v curl'`;
    chomp $curl;
    skip 'mod_http2 and a curl with HTTP/2', 4
        unless Apache::Test::have_module('http2') && $curl && `$curl --version` =~ /\bHTTP2\b/;
    my $size = 200000;
    my $u = "'" . url('cquick', "/q/length?size=$size&t=$t-h2&$ma") . "'";
    my $h2 = sub {
        my $out = `$curl -s -S --http2-prior-knowledge --max-time 10 -D - $u 2>&1`;
        return split /\r\n\r\n/, $out, 2;
    };
    my ($hd) = $h2->();
    like $hd, qr{^cache-status: revcache; fwd=uri-miss; fwd-status=200; stored}mi, 'HTTP/2 miss: stored';
    # The entry is committed once the backend's body has ended, which can
    # be a moment after curl has every byte and a new connection asks.
    select undef, undef, undef, 0.3;
    $w = RcTest::LogWatch->new;
    my ($hd2, $body) = $h2->();
    like $hd2, qr{^HTTP/2 200.*^cache-status: revcache; hit}msi, 'HTTP/2: a hit';
    is $body // '', substr('0123456789' x ($size / 10), 0, $size), 'HTTP/2 hit: every byte';
    is quick_hits($w, '/q/length'), 1, 'HTTP/2 hit: served by the quick handler';
}

ok $log->check(qr/AH01630: client denied/), 'no unexpected errors in the log';
