# Consistent hashing: a key always lands on the same member; taking a
# member out moves only that member's keys.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest qw(lb_get);

plan tests => 8, need_lwp;

my $log = RcTest::LogWatch->new;
my @ports = @ENV{qw(RC_ORIGIN_PORT RC_ORIGIN2_PORT RC_ORIGIN3_PORT)};

# By URI.
my (%first, %again, %per);
for my $i (1 .. 60) {
    (undef, $first{$i}) = lb_get("/lb/hash/headers?k=$i");
}
for my $i (reverse 1 .. 60) {
    (undef, $again{$i}) = lb_get("/lb/hash/headers?k=$i");
}
$per{$first{$_}}++ for keys %first;
is scalar(grep { $first{$_} ne $again{$_} } 1 .. 60), 0,
   'uri: every key went to the same member both times';
is scalar(grep { ($per{$_} // 0) >= 6 } @ports), 3,
   'uri: every member owns keys (' . join('/', map { $per{$_} // 0 } @ports)
   . ' of 60)';

# By header; hash2 has the same members with the third disabled.
my (%all, %two);
for my $u (map { "user$_" } 1 .. 90) {
    (undef, $all{$u}) = lb_get('/lb/hashhdr/headers', 'X-User' => $u);
    (undef, $two{$u}) = lb_get('/lb/hash2/headers', 'X-User' => $u);
}
my $third = $ports[2];
my @kept = grep { $all{$_} ne $third } keys %all;
my @moved = grep { $all{$_} eq $third } keys %all;
ok @moved >= 10 && @kept >= 40, scalar(@moved) . ' keys on the third member, '
   . scalar(@kept) . ' elsewhere';
is scalar(grep { $two{$_} ne $all{$_} } @kept), 0,
   'disabling a member leaves the other members\' keys where they were';
is scalar(grep { $two{$_} eq $third } @moved), 0,
   'its own keys moved to the others';
my %dest;
$dest{$two{$_}}++ for @moved;
is scalar(keys %dest), 2, 'spread over both remaining members';

# No header: the request still goes somewhere (least-conn).
my ($code) = lb_get('/lb/hashhdr/headers');
is $code, 200, 'no key: served anyway';

ok $log->check, 'no errors or warnings in the log';
