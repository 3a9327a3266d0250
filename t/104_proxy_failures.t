# Dead, slow and lying backends: the client gets 502/504 (or a visibly
# broken body once the head went out), one tagged log line, and nothing
# else is disturbed.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET);
use Time::HiRes qw(time);
use lib 't/lib';
use RcTest qw(raw);

plan tests => 25, need_lwp;

my $log = RcTest::LogWatch->new;
my ($res, $raw, $closed, $t0);

sub count_log { my $re = shift; scalar grep { $_ =~ $re } $log->lines }

# Nobody listening: 502 at once, logged once.
$res = GET '/dead/x';
is $res->code, 502, 'connection refused: 502';
is count_log(qr/RC00203: cannot connect to backend http:\/\/127\.0\.0\.1:\d+\/$/), 1, 'logged once (RC00203)';

# (A connect timeout cannot be provoked on this sandbox: its network
# stack completes every TCP handshake, even to a full accept queue or an
# unrouted address. The code path is the same as refusal, RC00203.)

# No answer within the route's timeout=1: 504.
$t0 = time;
$res = GET '/short/slow-head?ms=3000';
is $res->code, 504, 'no answer within the timeout: 504';
ok time - $t0 < 2.8, 'answered at the timeout, not when the backend woke up';
ok count_log(qr/RC00206/), 'timeout logged (RC00206)';

# Lying backends: a malformed or oversized head is a 502.
for my $case (qw(garbage bad-status bad-header bad-length two-lengths
                 te-and-cl huge-header?kb=100 many-headers?n=1000 reset
                 status/101)) {
    $res = GET "/o/$case";
    is $res->code, 502, "$case: 502";
}
is count_log(qr/RC0020[78]: bad response from backend/), 10, 'each logged once as a bad response';

# The body breaks after the head went out: the client must see a broken
# response, never a short one passed off as complete.
($raw, $closed) = raw("GET /o/truncate-length HTTP/1.1\r\nHost: x\r\n\r\n");
like $raw, qr{^HTTP/1\.1 200 .*Content-Length: 1000\r\n}s, 'truncated Content-Length body: head went out';
ok $closed && length(($raw =~ /\r\n\r\n(.*)\z/s)[0]) < 1000, 'connection closed before 1000 bytes';
($raw, $closed) = raw("GET /o/truncate-chunked HTTP/1.1\r\nHost: x\r\n\r\n");
like $raw, qr{^HTTP/1\.1 200 .*Transfer-Encoding: chunked\r\n}s, 'truncated chunked body: head went out';
ok $closed && $raw !~ /\r\n0\r\n\r\n\z/, 'no last-chunk: the client knows the body is incomplete';
is count_log(qr/RC00201/), 2, 'both logged (RC00201)';

# A body that stalls past the timeout.
($raw, $closed) = raw("GET /short/slow-body?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n");
like $raw, qr/\r\n\r\n01234\z/, 'stalled body: the first part was delivered (flushed when the backend paused)';
ok $closed && $raw !~ /56789/, 'stalled body: connection closed at the timeout';

# Everything else keeps working.
$res = GET '/o/echo/still-fine';
is $res->code, 200, 'other requests unaffected';

ok $log->check(qr/RC0020[13678]/), 'no other errors in the log';
