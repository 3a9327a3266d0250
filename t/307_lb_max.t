# max=N caps a member's concurrent requests across every child; when all
# members stay full beyond RevBalancerWait: 503 with Retry-After.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RcTest qw(lb_get parallel_get);

plan tests => 8, need_lwp;

my $log = RcTest::LogWatch->new;

sub direct {
    my ($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 5) or die "origin: $!";
    print $s "GET $path HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n";
    local $/;
    my $r = <$s>;
    $r =~ s/^.*?\r\n\r\n//s;
    return $r;
}

# 8 clients at once through a member with max=2.
direct($ENV{RC_ORIGIN2_PORT}, '/conc-max');
my $t0 = time;
my @r = parallel_get(8, 1, '/lb/mx/?ms=300');
my $took = time - $t0;
is scalar(grep { /^200 / } @r), 8, 'max=2: all 8 served (they waited)';
my ($cur, $max) = split ' ', direct($ENV{RC_ORIGIN2_PORT}, '/conc-max');
is $max, 2, 'max=2: the origin saw at most 2 at once (and 2 did happen)';
ok $took >= 1.1, sprintf 'max=2: 8 x 300 ms took %.2f s (>= 4 rounds)', $took;

# max=1, RevBalancerWait 300ms: one slow request holds the member.
my $holder = fork // die;
if (!$holder) {
    lb_get('/lb/mx1/?ms=1500');
    POSIX::_exit(0);
}
sleep 0.4;
$t0 = time;
my ($code, undef, $res) = lb_get('/lb/mx1/?ms=10');
$took = time - $t0;
is $code, 503, 'member full beyond the wait: 503';
is $res->header('Retry-After'), '1', 'with Retry-After';
ok $took >= 0.25 && $took < 1.2, sprintf 'after waiting about 300 ms (%.2f s)', $took;
waitpid $holder, 0;
($code) = lb_get('/lb/mx1/?ms=10');
is $code, 200, 'free again: 200';

ok $log->check(qr/RC00420/), 'no other errors in the log';
