# A member killed under load costs clients no failed GET: what never
# reached it, and idempotent requests it dropped, go to another member;
# it is ejected, and once back, it gets traffic again after slow start.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RcTest qw(lb_get parallel_get spawn_origin stop_origin wait_log);

plan tests => 9, need_lwp;

my $log = RcTest::LogWatch->new;
my ($stable, $spare) = @ENV{qw(RC_ORIGIN2_PORT RC_SPARE1_PORT)};
my $pid = spawn_origin(1);

my %n;
for (1 .. 10) {
    my ($c, $p) = lb_get('/lb/fo/headers');
    $n{$c == 200 ? $p : "err$c"}++;
}
ok(($n{$spare} // 0) == 5 && ($n{$stable} // 0) == 5,
   'both members serve while up');

# Kill the member while 6 clients hammer the balancer for 1.5 s.
my $killer = fork // die;
if (!$killer) {
    sleep 0.4;
    kill 'TERM', $pid;
    POSIX::_exit(0);
}
my $t0 = time;
my @r = parallel_get(6, 0, '/lb/fo/headers', secs => 1.5);
waitpid $killer, 0;
stop_origin($pid);
my %m;
$m{$_}++ for @r;
ok @r > 100, scalar(@r) . ' requests answered';
is scalar(grep { !/^200 / } @r), 0, 'zero failed GETs while the member died'
    or diag join ', ', map { "$_: $m{$_}" } sort keys %m;
ok(($m{"200 $spare"} // 0) > 0, 'the member served before it died');
ok wait_log($log, qr/RC00410: balancer fo: member \S+:$spare ejected/, 2),
   'its ejection is logged';

# Bring it back: a trial request after the cooldown brings it back.
$pid = spawn_origin(1);
my $t = time;
my $back;
while (time - $t < 5 && !$back) {
    lb_get('/lb/fo/headers');
    $back = wait_log($log, qr/RC00411: balancer fo: member \S+:$spare recovered/, 0.05);
}
ok $back, 'recovery logged (half-open trial succeeded)';

# Slow start (3 s): little traffic at first, its full share later.
my (%early, %late);
for (1 .. 20) { my (undef, $p) = lb_get('/lb/fo/headers'); $early{$p}++ }
sleep 3.2 - (time - $t > 3.2 ? 3.2 : time - $t) if time - $t < 3.2;
sleep 0.2;
for (1 .. 40) { my (undef, $p) = lb_get('/lb/fo/headers'); $late{$p}++ }
my ($e, $l) = (($early{$spare} // 0) / 20, ($late{$spare} // 0) / 40);
ok $e < 0.35, sprintf 'right after recovery it gets a small share (%.0f%%)', 100 * $e;
ok $l >= 0.4, sprintf 'after slow start its full share (%.0f%%)', 100 * $l;
stop_origin($pid);

ok $log->check(qr/RC0041[01]/), 'no other errors in the log (retried attempts are no errors)';
