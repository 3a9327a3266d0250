# Active health checks: one prober for the whole server marks a member
# down (its /health fails, or it is gone) and up again.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RcTest qw(lb_get wait_log wait_probes);

plan tests => 12, need_lwp;

my $log = RcTest::LogWatch->new;
my ($keep, $port) = @ENV{qw(RC_ORIGIN3_PORT RC_ORIGIN4_PORT)};

sub direct { RcTest::direct_raw($_[0], $port) }
sub spread { RcTest::lb_spread('/lb/hc/headers', 20) }
my $down = qr/RC00412: balancer hc: member \S+:$port marked down/;
my $up = qr/RC00413: balancer hc: member \S+:$port marked up/;

my $n = spread();
ok(($n->{$port} // 0) == 10, 'both members serve');

# Its /health answers 500: down after fails=2 probes, no traffic.
ok wait_probes($ENV{RC_ORIGIN4_LOG}, 2), 'the prober is running';
direct('/health-set?code=500');
my $w = RcTest::LogWatch->new;
ok wait_log($w, $down, 3), '/health 500: marked down (logged)';
$n = spread();
is $n->{$keep} // 0, 20, 'down: no traffic to it';

direct('/health-set?code=200');
$w = RcTest::LogWatch->new;
ok wait_log($w, $up, 3), '/health 200 again: marked up (logged)';
$n = spread();
ok(($n->{$port} // 0) >= 8, 'up: traffic again');

# The origin stops (refuses connections) for 2.5 s: down, then up.
$w = RcTest::LogWatch->new;
direct('/pause?s=2.5');
ok wait_log($w, $down, 2), 'origin stopped: marked down';
$n = spread();
is $n->{$keep} // 0, 20, 'stopped: all 200 from the other member';
ok wait_log($w, $up, 5), 'origin back: marked up';
$n = spread();
ok(($n->{$port} // 0) >= 8, 'back: traffic again');

# One prober, not one per child: interval=250ms gives ~8 probes in 2 s.
my $plog = $ENV{RC_ORIGIN4_LOG};
my $before = () = grep { m{uri=/health } } do { open my $f, '<', $plog or die; <$f> };
sleep 2;
my $after = () = grep { m{uri=/health } } do { open my $f, '<', $plog or die; <$f> };
my $probes = $after - $before;
ok $probes >= 4 && $probes <= 12, "$probes probes in 2 s: one prober for the server";

ok $log->check(qr/RC0020[367]|RC0041[0-3]|RC00424/), 'no other errors in the log';
