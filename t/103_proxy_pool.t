# The per-process keep-alive pool: reuse, per-route options, pool bounds,
# idle expiry, what makes a connection unreusable, and the one retry of
# an idempotent request whose pooled connection was dead.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET POST);
use IO::Socket::INET;
use lib 't/lib';
use RcTest qw(raw origin_log);

plan tests => 21, need_lwp;

my $log = RcTest::LogWatch->new;
# One client connection: every request lands on the same httpd thread,
# hence on the same process's pool.
Apache::TestRequest::user_agent(reset => 1, keep_alive => 1);

sub conns {
    my ($path, $n) = @_;
    my (%ids, @seq);
    for (1 .. $n) {
        my $res = GET $path;
        $ids{ $res->header('X-Conn-Id') // 'none' }++;
        push @seq, $res->header('X-Req-Seq');
    }
    return (scalar(keys %ids), \@seq);
}

my ($n, $seq) = conns('/o/echo/pool', 20);
ok $n <= 2, "20 requests used $n backend connection(s)";
ok((grep { $_ > 1 } @$seq), 'backend connections carried several requests');

($n) = conns('/nokeep/echo/nokeep', 5);
is $n, 5, 'keepalive=Off: a connection per request';
my $res = GET '/nokeep/echo/nk';
like $res->content, qr/^Connection: close\r$/m, 'keepalive=Off asks the backend to close';

($n) = conns('/nopool/echo/nopool', 5);
is $n, 5, 'maxidle=0: nothing kept idle';
unlike((GET '/nopool/echo/x')->content, qr/^Connection: close/m, 'maxidle=0 still speaks keep-alive');

# idlettl=1: an idle connection older than a second is not reused.
my $a = (GET '/ttl/echo/ttl1')->header('X-Conn-Id');
my $b = (GET '/ttl/echo/ttl2')->header('X-Conn-Id');
is $a, $b, 'reused within the idle TTL';
sleep 2;
my $c = (GET '/ttl/echo/ttl3')->header('X-Conn-Id');
isnt $c, $b, 'not reused after the idle TTL';

# Two routes to the same backend keep their own options: /o2/ has
# timeout=2, /o/ inherits Timeout 10.
$res = GET '/o2/slow-head?ms=3000';
is $res->code, 504, 'route with timeout=2 times out';
$res = GET '/o/slow-head?ms=2500';
is $res->code, 200, 'same backend through another route waits longer';
like((GET '/o2/echo/x')->content, qr/^Connection: close\r$/m, '/o2/ keepalive=Off is its own');

# A pooled connection the backend closes as we reuse it: a GET is sent
# again on a new connection, once.
is((GET '/o/close-next')->content, "armed\n", 'backend armed to drop the next request');
$res = GET '/o/echo/retry-me';
is $res->code, 200, 'GET on a dead pooled connection retried';
is scalar(grep { m{uri=/echo/retry-me } } origin_log()), 2, 'origin saw the GET twice: dropped, then answered';

# ... but a POST is not (it may have had effects).
GET '/o/close-next';
$res = POST '/o/echo/post-no-retry', content => 'once';
is $res->code, 502, 'POST on a dead pooled connection: 502, no retry';
is scalar(grep { m{uri=/echo/post-no-retry } } origin_log()), 1, 'origin saw the POST once';

# Connection: close from the backend, and a truncated body, end reuse.
my $closed = (GET '/o/close-after')->header('X-Conn-Id');
isnt((GET '/o/echo/after-close')->header('X-Conn-Id'), $closed, 'no reuse after Connection: close');
my $trunc = (GET '/o/truncate-length')->header('X-Conn-Id');
isnt((GET '/o/echo/after-trunc')->header('X-Conn-Id'), $trunc, 'no reuse after a truncated body');
my $drop = (GET '/o/drop-after?ms=10')->header('X-Conn-Id');
select undef, undef, undef, 0.3;
$res = GET '/o/echo/after-drop';
ok $res->code == 200 && $res->header('X-Conn-Id') ne $drop, 'idle connection closed by the backend detected';

# The client goes away mid-body: the backend connection is closed, not
# pooled, and the event is logged.
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => RcTest::front_port(), Timeout => 5);
print $s "GET /o/length?size=50000000 HTTP/1.1\r\nHost: x\r\n\r\n";
sysread $s, my $buf, 4096;
close $s;
sleep 1;
ok scalar(grep { /RC00202/ } $log->lines), 'client abort logged (RC00202)';

ok $log->check(qr/RC0020[367]/, qr/RC00201.*truncate/), 'only the expected errors in the log';
