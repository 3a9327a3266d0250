# A graceful restart with the same balancers keeps their shared state:
# a member marked down stays down, and the prober runs again after it.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RcTest qw(lb_get wait_log wait_probes);

plan tests => 7, need_lwp;

my $log = RcTest::LogWatch->new;
my ($keep, $port) = @ENV{qw(RC_ORIGIN3_PORT RC_ORIGIN4_PORT)};

sub direct { RcTest::direct_raw($_[0], $port) }
sub spread { RcTest::lb_spread('/lb/hc/headers', 20) }

ok wait_probes($ENV{RC_ORIGIN4_LOG}, 2), 'the prober is running';
direct('/health-set?code=500');
ok wait_log($log, qr/RC00412: balancer hc: member \S+:$port marked down/, 3),
   'member marked down before the restart';

my $w = RcTest::LogWatch->new;
open my $fh, '<', Apache::Test::vars('t_logs') . '/httpd.pid' or die $!;
my $httpd = <$fh> + 0;
kill 'USR1', $httpd;
ok wait_log($w, qr/resuming normal operations/, 10), 'graceful restart done';
ok grep({ /RC00403: .*kept from before the restart/ } $w->lines),
   'shared memory kept (same layout)';
my $n = spread();
is $n->{$keep} // 0, 20, 'the member is still down after the restart';

direct('/health-set?code=200');
ok wait_log($w, qr/RC00413: balancer hc: member \S+:$port marked up/, 15),
   'the prober of the new generation marks it up';

# (mod_http2 warns at every (re)start under prefork)
ok $log->check(qr/RC0041[23]|AH10034/), 'no other errors in the log';
