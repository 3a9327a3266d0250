# HTTP/2 clients (mod_http2, h2c with prior knowledge): the proxy still
# speaks HTTP/1.1 to the backend; bodies stream both ways; a broken
# backend body resets the stream instead of passing a short body off.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use File::Temp qw(tempfile);
use lib 't/lib';
use RcTest ();

my $curl = `sh -c 'command -v curl'`;
chomp $curl;
my $h2 = $curl && `$curl --version` =~ /\bHTTP2\b/;
plan tests => 9, need need_module('http2'),
    { 'curl with HTTP/2 support' => sub { $h2 } };

my $log = RcTest::LogWatch->new;
my $port = RcTest::front_port('h2front');
my $base = "http://127.0.0.1:$port";

sub curl {
    my (@args) = @_;
    my $out = `$curl -s -S --http2-prior-knowledge --max-time 10 -D - @args 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = curl("'$base/o/echo/h2?x=1'");
like $out, qr{^HTTP/2 200}, 'HTTP/2 request answered';
like $out, qr{\r\n\r\nGET /echo/h2\?x=1 HTTP/1\.1\r\n}, 'forwarded as HTTP/1.1';
like $out, qr{^Via: 2 }m, 'Via names the client protocol';
unlike $out, qr{^(?:connection|keep-alive|transfer-encoding):}mi, 'no connection-specific fields in HTTP/2';

my ($fh, $file) = tempfile(UNLINK => 1);
print $fh 'y' x 100000;
close $fh;
($rc, $out) = curl("--data-binary \@$file -H 'Content-Type: application/octet-stream' '$base/o/echo/h2post'");
like $out, qr{^HTTP/2 200}, 'HTTP/2 POST answered';
ok $out =~ /--body--\n(y+)\z/ && length($1) == 100000, 'request body streamed to the backend whole';

($rc, $out) = curl("'$base/o/length?size=300000' -o /dev/null -w '%{size_download}'");
like $out, qr{300000\z}, 'large response body over HTTP/2';

($rc, $out) = curl("'$base/o/truncate-length' -o /dev/null");
isnt $rc, 0, 'truncated backend body: the HTTP/2 stream fails, not a short success';

ok $log->check(qr/RC00201/), 'no unexpected errors in the log';
