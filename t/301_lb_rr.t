# Smooth weighted round-robin across every child: weights 3:1 give 3:1,
# without bursts to the heavy member; member URLs keep their own path.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest qw(lb_get parallel_get);

plan tests => 9, need_lwp;

my $log = RcTest::LogWatch->new;
my ($heavy, $light) = @ENV{qw(RC_ORIGIN2_PORT RC_ORIGIN3_PORT)};

# The path: the member's own base path goes first.
my (%paths, @codes);
for (1 .. 4) {
    my ($code, $port, $res) = lb_get('/lb/rr/echo/x?q=1');
    push @codes, $code;
    $paths{$port} = ($res->content =~ /^GET (\S+) /)[0];
}
is "@codes", '200 200 200 200', 'balanced GETs answer 200';
my $both = join ' ', map { $paths{$_} // '?' } $heavy, $light;
like $both, qr{^/echo/x\?q=1 /echo/echo/x\?q=1$},
    'member base path + route remainder + query';

# 400 sequential requests: the global sequence is exact.
my @seq;
for (1 .. 400) {
    my ($c, $p) = lb_get('/lb/rr/headers');
    push @seq, $c == 200 ? $p : "err$c";
}
my %n;
$n{$_}++ for @seq;
ok abs(($n{$heavy} // 0) - 300) <= 30, "weight 3: 300 +- 30 (got "
    . ($n{$heavy} // 0) . ")";
ok abs(($n{$light} // 0) - 100) <= 30, "weight 1: 100 +- 30 (got "
    . ($n{$light} // 0) . ")";
my ($run, $max) = (0, 0);
for (@seq) {
    $run = $_ eq $heavy ? $run + 1 : 0;
    $max = $run if $run > $max;
}
ok $max <= 3, "smooth: at most 3 in a row to the heavy member (got $max)";

# The same under concurrency, from several children at once.
my @par = parallel_get(8, 50, '/lb/rr/headers');
my %m;
$m{$_}++ for @par;
is scalar(grep { !/^200 / } @par), 0, 'concurrent: all 200';
my $h = $m{"200 $heavy"} // 0;
ok abs($h - 300) <= 30, "concurrent: weight 3 gets 300 +- 30 of 400 (got $h)";

# The member is recorded for the access log.
select(undef, undef, undef, 0.3);
open my $fh, '<', Apache::Test::vars('t_logs') . '/lb_access_log' or die $!;
my @acc = grep { m{^/lb/rr/} } <$fh>;
like $acc[-1], qr{^/lb/rr/headers 200 rr/(?:heavy|light) http://127\.0\.0\.1:\d+},
    'revcache-balancer-member and revcache-backend notes set';

ok $log->check, 'no errors or warnings in the log';
