# A child killed while it holds a max=N slot does not leave the member
# full: the parent's monitor gives the dead child's reservations back.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RcTest qw(lb_get wait_log);

plan tests => 4, need_lwp;

my $log = RcTest::LogWatch->new;

# mx1: one member, max=1, RevBalancerWait 300ms.
my $holder = fork // die;
if (!$holder) {
    lb_get('/lb/mx1/?ms=5000');
    POSIX::_exit(0);
}
sleep 0.5;
my ($code) = lb_get('/lb/mx1/?ms=10');
is $code, 503, 'the slot is held: 503';

# SIGKILL every child (the parent starts new ones).
open my $fh, '<', Apache::Test::vars('t_logs') . '/httpd.pid' or die $!;
my $httpd = <$fh> + 0;
my @kids = map { $_ + 0 } grep { /\d/ } `ps -o pid= --ppid $httpd`;
kill 'KILL', @kids;
waitpid $holder, 0;
ok wait_log($log, qr/RC0040[68]: balancer: took back [1-9]\d* in-flight/, 5),
   'the parent took back what the dead held (logged)';

my $t = time;
do { ($code) = lb_get('/lb/mx1/?ms=10'); sleep 0.1 if $code != 200 }
    while ($code != 200 && time - $t < 5);
is $code, 200, 'the member takes requests again';

ok $log->check(qr/RC00420|AH00052|AH10392|RC0020[1367]/), 'no other errors in the log';
