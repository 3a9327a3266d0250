# A slow member is avoided by least-conn (in-flight shared by every
# child) and by p2c-ewma (latency learnt from answers).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest qw(lb_get parallel_get);

plan tests => 6, need_lwp;

my $log = RcTest::LogWatch->new;
my ($slow, $fast) = @ENV{qw(RC_ORIGIN2_PORT RC_ORIGIN3_PORT)};

# least-conn: 8 clients at once, 6 requests each; the slow member holds
# its requests for 400 ms, the fast one answers at once.
my @r = parallel_get(8, 6, '/lb/lc/?ms=400');
my %n;
$n{$_}++ for @r;
is scalar(grep { !/^200 / } @r), 0, 'least-conn: all 200';
my $s = $n{"200 $slow"} // 0;
ok $s <= 12, "least-conn: the slow member got $s of 48 (at most 12)";
ok(($n{"200 $fast"} // 0) >= 36, 'least-conn: the fast member took the rest');

# p2c-ewma: one client; after a first answer from each, the slow member's
# EWMA (~300 ms) keeps it out.
my %p;
for (1 .. 30) {
    my ($c, $port) = lb_get('/lb/p2c/?ms=300');
    $p{$c == 200 ? $port : "err$c"}++;
}
is join(',', grep { /^err/ } keys %p), '', 'p2c-ewma: all 200';
ok(($p{$slow} // 0) <= 3, 'p2c-ewma: the slow member got '
   . ($p{$slow} // 0) . ' of 30 (at most 3)');

ok $log->check, 'no errors or warnings in the log';
