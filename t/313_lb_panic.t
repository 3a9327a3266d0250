# Panic: when every member is ejected, the balancer still uses them (a
# random one per request) instead of answering 503 until the cooldowns
# end; the first success brings its member back. panic=off keeps 503.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest qw(lb_get spawn_origin stop_origin wait_log);

plan tests => 9, need_lwp;

my $log = RcTest::LogWatch->new;
my @ports = @ENV{qw(RC_SPARE1_PORT RC_SPARE2_PORT)};
my @pids = (spawn_origin(1), spawn_origin(2));

my ($c) = lb_get('/lb/pn/headers');
is $c, 200, 'both members up: 200';
($c) = lb_get('/lb/pnoff/headers');
is $c, 200, 'panic=off balancer: 200 too';

# Both go away: one request on each balancer ejects both members (the
# retry goes to the other one).
stop_origin($_) for @pids;
($c) = lb_get('/lb/pn/headers');
is $c, 502, 'both members down: 502';
($c) = lb_get('/lb/pnoff/headers');
is $c, 502, 'both members down (panic=off): 502';
select undef, undef, undef, 0.3;
is scalar(grep { /RC00410: balancer pnoff: member \S+ ejected/ } $log->lines), 2,
   'both members of pnoff ejected';

# They are back long before the 30 s cooldown ends.
@pids = (spawn_origin(1), spawn_origin(2));
my ($p);
($c, $p) = lb_get('/lb/pn/headers');
is $c, 200, 'panic: every member ejected, yet the next request is served';
ok wait_log($log, qr/RC00411: balancer pn: member \S+:\Q$p\E recovered/, 2),
   'the member that answered is back';
($c) = lb_get('/lb/pnoff/headers');
is $c, 503, 'panic=off: 503 until the cooldown ends';
stop_origin($_) for @pids;

ok $log->check(qr/RC0041[01]|RC00421|RC00425/), 'no other errors in the log';
