# A backup member gets traffic only while no primary is usable.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RcTest qw(lb_get spawn_origin stop_origin);

plan tests => 11, need_lwp;

my $log = RcTest::LogWatch->new;
my ($p1, $p2, $backup) = @ENV{qw(RC_SPARE2_PORT RC_SPARE4_PORT RC_ORIGIN3_PORT)};
my $pid1 = spawn_origin(2);
my $pid2 = spawn_origin(4);

sub spread {
    my %n;
    for (1 .. 20) {
        my ($c, $p) = lb_get('/lb/bk/headers');
        $n{$c == 200 ? $p : "err$c"}++;
    }
    return \%n;
}
sub show { my $n = shift; join ', ', map { "$_=$n->{$_}" } sort keys %$n }

my $n = spread();
ok !$n->{$backup} && ($n->{$p1} // 0) == 10 && ($n->{$p2} // 0) == 10,
   'both primaries up: the backup gets nothing (' . show($n) . ')';

stop_origin($pid1);
$n = spread();
is join(',', grep { /^err/ } keys %$n), '', 'one primary down: all 200';
ok !$n->{$backup} && ($n->{$p2} // 0) == 20,
   'one primary left: it takes everything, not the backup (' . show($n) . ')';

stop_origin($pid2);
$n = spread();
is join(',', grep { /^err/ } keys %$n), '', 'every primary down: all 200';
is $n->{$backup} // 0, 20, 'every primary down: the backup serves ('
   . show($n) . ')';

# Primaries back: after their cooldown a trial brings each back and
# the backup goes idle again.
$pid1 = spawn_origin(2);
$pid2 = spawn_origin(4);
my $t = time;
my $quiet = 0;
while (time - $t < 5 && $quiet < 10) {
    my ($c, $p) = lb_get('/lb/bk/headers');
    $quiet = $p eq $backup ? 0 : $quiet + 1;
    sleep 0.02;
}
is $quiet, 10, 'primaries back: the backup is idle again';
$n = spread();
ok !$n->{$backup} && $n->{$p1} && $n->{$p2}, 'both primaries serve again ('
   . show($n) . ')';
stop_origin($_) for $pid1, $pid2;

# Failed attempts that another member made good are no errors: only
# ejections and recoveries were logged above.
ok $log->check(qr/RC0041[01]/), 'no other errors in the log';

# Every member down: one error line for the request, naming the last
# failure; the attempts themselves only at info.
$log = RcTest::LogWatch->new;
my ($code) = lb_get('/lb/alldead/x');
is $code, 502, 'every member refuses: 502';
select undef, undef, undef, 0.3;
my @err = grep { /\[(?:\w+:)?error\]/ } $log->lines;
is scalar(@err), 1, 'one error line for the failed request'
    or diag join "\n", @err;
like $err[0] // '', qr/RC00425: balancer alldead: cannot connect to backend http:\/\/127\.0\.0\.1:\d+\/?: .*\(2 attempts, at most 2\)/,
    'it names the balancer, the last failure and the attempts';
