# HTTP/2 clients (h2c, prior knowledge) and the cache: a hit is served
# from shared memory through mod_http2 byte-exact, HEAD and Range too.
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
plan tests => 9, need need_module('http2'),
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
ok origin_count(qr{uri=/length\?size=$size&t=211}) == 1 && $log->check,
    'one origin request, no unexpected errors in the log';
