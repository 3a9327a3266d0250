# The store: objects above RevCacheMaxObjectSize stream through uncached,
# a truncated body is never stored, Range requests are answered from a
# stored full response, small and chunked bodies round-trip byte-exact,
# header fields come back from the cache byte for byte (the compact
# metadata of cache_meta.c), and one entry serves every child process.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET);
use Digest::MD5 qw(md5_hex);
use lib 't/lib';
use RcTest qw(origin_count raw parse_raw);

plan tests => 31, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

sub cs { $_[0]->header('Cache-Status') // '' }
sub pattern { my ($alpha, $len) = @_; substr($alpha x (int($len / length($alpha)) + 1), 0, $len) }
my $ma = 'h=Cache-Control:max-age%3D60&t=208';  # t=208: ours in the origin log

# Larger than RevCacheMaxObjectSize (256K), announced by Content-Length:
# streamed, not stored.
my $big = "/c/length?size=300000&$ma";
$res = GET $big;
is length($res->content), 300000, 'big object: whole body';
is $res->content, pattern('0123456789', 300000), 'big object: bytes exact';
like cs($res), qr/detail=too-big$/, 'big object: not stored (Cache-Status)';
GET $big;
is origin_count(qr{uri=/length\?size=300000\S*t=208}), 2, 'big object: both requests reached the origin';

# Chunked, found too big while streaming: the client still gets it all.
my $bc = "/c/chunked?n=10&size=40000&$ma";
$res = GET $bc;
is length($res->content), 400000, 'big chunked object: whole body';
is md5_hex($res->content), md5_hex(pattern(join('', 'a' .. 'z'), 400000)), 'big chunked object: bytes exact';
GET $bc;
is origin_count(qr{uri=/chunked\?n=10&size=40000\S*t=208}), 2, 'big chunked object: not stored';

# A chunked body below the limit is stored; the hit has a Content-Length.
my $sc = "/c/chunked?n=3&size=20000&$ma";
GET $sc;
$res = GET $sc;
like cs($res), qr/^revcache; hit/, 'chunked object: stored';
is $res->header('Content-Length'), 60000, 'chunked object: hit with Content-Length';
is $res->content, pattern(join('', 'a' .. 'z'), 60000), 'chunked object: bytes exact from the cache';
# A body of exactly the maximum size is stored.
my $max = "/c/length?size=262144&$ma";
GET $max;
$res = GET $max;
like cs($res), qr/^revcache; hit/, 'an object of exactly RevCacheMaxObjectSize: stored';
is md5_hex($res->content), md5_hex(pattern('0123456789', 262144)), 'max-size object: bytes exact';

# A truncated body is never stored.
for my $t (qw(truncate-length truncate-chunked)) {
    raw("GET /c/$t?$ma HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    my ($bytes) = raw("GET /c/$t?$ma HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    like $bytes, qr/fwd=uri-miss; fwd-status=200; stored/, "$t: the second request is a miss again";
    is origin_count(qr{uri=/$t\?.*t=208}), 2, "$t: both reached the origin";
}

# Range requests are answered from the stored full response.
my $rg = "/c/length?size=1000&$ma";
GET $rg;
$res = GET $rg, Range => 'bytes=10-19';
is $res->code, 206, 'Range on a hit: 206';
is $res->content, '0123456789', 'Range on a hit: the bytes asked for';
is $res->header('Content-Range'), 'bytes 10-19/1000', 'Range on a hit: Content-Range';
like cs($res), qr/^revcache; hit/, 'Range on a hit: from the cache';
$res = GET $rg, Range => 'bytes=0-1,998-';
is $res->code, 206, 'multiple ranges: 206';
like $res->header('Content-Type'), qr{^multipart/byteranges}, 'multiple ranges: multipart';
is origin_count(qr{uri=/length\?size=1000&\S*t=208}), 1, 'Range: the origin was asked once';

# Header fields served from the cache are those of the stored response,
# byte for byte: names in their own case, repeated fields in order, dates
# in forms that are not kept as numbers (RFC 850, a wrong weekday), an
# IMF-fixdate that is, long and odd values.
{
    my @h = ('Expires:Sunday, 06-Nov-94 08:49:37 GMT',
             'Last-Modified:Mon, 06 Nov 1994 08:49:37 GMT',
             'X-When:Sun, 06 Nov 1994 08:49:37 GMT',
             'x-lower:a', 'ETAG:"e1"', 'Link:</a>; rel=preload',
             'Link:</b>; rel=preload', 'X-Long:' . ('v' x 300),
             'X-Odd:a  b,;=\x', 'Content-Language:de', 'Cache-Control:max-age=60');
    my $q = join('&', map { 'h=' . s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ger } @h);
    my $req = "GET /c/headers?$q&t=208hdr HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    my ($miss) = raw($req);
    my ($hit) = raw($req);
    my $fields = sub {
        my ($head) = split /\r\n\r\n/, $_[0], 2;
        my @l = split /\r\n/, $head;
        shift @l;
        return [ sort grep { !/^(?:Date|Age|Cache-Status|Connection|Keep-Alive):/i } @l ];
    };
    like $hit, qr/^Cache-Status: revcache; hit/m, 'odd header fields: stored, then a hit';
    is_deeply $fields->($hit), $fields->($miss), 'odd header fields: the same lines from the cache';
    is join(" ", $hit =~ m{^Link: </(.)>}mg), 'a b', 'odd header fields: repeated fields in order';
    ok index($hit, "\r\nExpires: Sunday, 06-Nov-94 08:49:37 GMT\r\n") >= 0
       && index($hit, "\r\nX-When: Sun, 06 Nov 1994 08:49:37 GMT\r\n") >= 0
       && index($hit, "\r\nx-lower: a\r\n") >= 0, 'odd header fields: dates and name case as sent';
}

# One entry for every child: a store in one process, hits in others
# (new connections land on any child).
my $sh = "/c/ctr/z1?$ma";
my $w = RcTest::LogWatch->new;
GET $sh;
my %hit_pids;
for (1 .. 60) {
    my ($b) = raw("GET $sh HTTP/1.1\r\nHost: localhost:" . Apache::Test::vars('port') . "\r\nConnection: close\r\n\r\n");
    last if keys %hit_pids > 1;
    select undef, undef, undef, 0.02;
    %hit_pids = map { /\[pid (\d+)/ ? ($1 => 1) : () } grep { /RC00306: cache: hit \S+ctr\/z1/ } $w->lines;
}
my ($stored_pid) = map { /\[pid (\d+)/ } grep { /RC00325: cache: stored \S+ctr\/z1/ } $w->lines;
ok $stored_pid, "stored by process $stored_pid";
my @others = grep { $_ != ($stored_pid // 0) } keys %hit_pids;
ok @others >= 1, 'hits served by other processes: ' . join(', ', @others);
is origin_count(qr{uri=/ctr/z1\?}), 1, 'shared entry: one origin request';

ok $log->check(qr/RC00201/), 'no unexpected errors in the log (the truncated bodies aside)';
