# HTTP/2 clients (h2c, prior knowledge) and the cache: a hit is served
# from shared memory through mod_http2 byte-exact, HEAD and Range too; a
# request that streams another one's fetch gets it whole, or a reset
# stream when the fetch breaks off.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Digest::MD5 qw(md5_hex);
use lib 't/lib';
use RcTest qw(origin_count);

my $curl = `sh -c 'command -v curl'`;
chomp $curl;
my $h2 = $curl && `$curl --version` =~ /\bHTTP2\b/;
plan tests => 14, need need_module('http2'),
    { 'curl with HTTP/2 support' => sub { $h2 } };

my $log = RcTest::LogWatch->new;
my $base = 'http://127.0.0.1:' . RcTest::front_port('h2front');

sub curl {
    my $out = `$curl -s -S --http2-prior-knowledge --max-time 10 -D - @_ 2>&1`;
    my ($head, $body) = split /\r\n\r\n/, $out, 2;
    return ($head // '', $body // '');
}

my $size = 200000;
my $u = "'$base/c/length?size=$size&t=211&h=Cache-Control:max-age%3D60'";
my ($h1, $b1) = curl($u);
like $h1, qr{^HTTP/2 200}, 'HTTP/2 miss: 200';
like $h1, qr{^cache-status: revcache; fwd=uri-miss; fwd-status=200; stored}mi, 'HTTP/2 miss: stored';
my ($h2h, $b2) = curl($u);
like $h2h, qr{^cache-status: revcache; hit}mi, 'HTTP/2: a hit';
is length($b2), $size, 'HTTP/2 hit: whole body';
is md5_hex($b2), md5_hex(substr('0123456789' x ($size / 10), 0, $size)), 'HTTP/2 hit: bytes exact';
my ($h3) = curl("-I $u");
like $h3, qr{^content-length: $size\r?$}mi, 'HTTP/2 HEAD from the stored GET';
my ($h4, $b4) = curl("-H 'Range: bytes=100-109' $u");
like $h4, qr{^HTTP/2 206}, 'HTTP/2 Range on a hit: 206';
is $b4, '0123456789', 'HTTP/2 Range on a hit: the bytes';
ok origin_count(qr{uri=/length\?size=$size&t=211}) == 1,
    'one origin request';

# Streaming another request's fetch (t/212) over HTTP/2: an HTTP/1.1
# client of the same host starts a fetch the origin sends in 10 pieces
# 100 ms apart.
sub owner {
    my ($path) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $port = RcTest::front_port('h2front');
        RcTest::raw("GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n"
                    . "Connection: close\r\n\r\n", module => 'h2front');
        POSIX::_exit(0);
    }
    select(undef, undef, undef, 0.3);
    return $pid;
}
require POSIX;
my $q = 'size=100000&drip=10&dripms=100&h=Cache-Control:max-age%3D60';
my $pid = owner("/c/ctr/h2st1?$q");
my ($h5, $b5) = curl("'$base/c/ctr/h2st1?$q'");
waitpid $pid, 0;
like $h5, qr{^cache-status: revcache; fwd=uri-miss; fwd-status=200; ttl=\d+; detail=streamed; collapsed\r?$}mi,
    'HTTP/2: streamed another request\'s fetch';
my $abc = join '', 'a' .. 'z';
is md5_hex($b5), md5_hex(substr("h2st1 1\n" . $abc x 4000, 0, 100000)),
    'HTTP/2 streamed: the whole body, bytes exact';
$pid = owner("/c/ctr/h2st2?$q&cut=50000");
my $out = `$curl -s --http2-prior-knowledge --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' '$base/c/ctr/h2st2?$q&cut=50000' 2>/dev/null`;
my $rc = $? >> 8;
waitpid $pid, 0;
isnt $rc, 0, "HTTP/2 streamed, fetch broken off: curl sees an error ($rc)";
ok $out =~ /^200 (\d+)$/ && $1 < 100000,
    "HTTP/2 streamed, fetch broken off: short ($out)";
ok $log->check(qr/RC00201|RC00339/), 'no unexpected errors in the log';
