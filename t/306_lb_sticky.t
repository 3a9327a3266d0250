# RevBalancerSticky cookie=NAME pins a client to its member.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest qw(lb_get);

plan tests => 10, need_lwp;

my $log = RcTest::LogWatch->new;
my %route = (one => $ENV{RC_ORIGIN_PORT}, two => $ENV{RC_ORIGIN2_PORT},
             three => $ENV{RC_ORIGIN3_PORT});

# No cookie: a member is picked and the cookie names it.
my ($code, $port, $res) = lb_get('/lb/st/headers');
my ($r) = ($res->header('Set-Cookie') // '') =~ /^RCROUTE=(\w+); Path=\//;
ok $r && $route{$r}, 'first response sets RCROUTE=' . ($r // '?');
is $port, $route{$r // ''} // '', 'the cookie names the member that answered';

for my $want (qw(two three)) {
    my (%seen, $set);
    for (1 .. 10) {
        my ($c, $p, $rs) = lb_get('/lb/st/headers', Cookie => "a=b; RCROUTE=$want; c=d");
        $seen{$c == 200 ? $p : "err$c"}++;
        $set ||= $rs->header('Set-Cookie');
    }
    is_deeply \%seen, { $route{$want} => 10 }, "RCROUTE=$want: 10 of 10 to its member";
    ok !$set, "RCROUTE=$want: no new cookie";
}

# An unknown route: picked normally, and the cookie is replaced.
($code, $port, $res) = lb_get('/lb/st/headers', Cookie => 'RCROUTE=nosuch');
($r) = ($res->header('Set-Cookie') // '') =~ /^RCROUTE=(\w+);/;
ok $code == 200 && $r && $route{$r} eq $port,
   'unknown route: served, and the new cookie names the member';

# status=drain (route in a <Location>): no new sessions, but its sticky
# clients stay.
my %d;
for (1 .. 10) { my ($c, $p) = lb_get('/lb/dr/headers'); $d{"$c $p"}++ }
is_deeply \%d, { "200 $ENV{RC_ORIGIN2_PORT}" => 10 }, 'drain: new clients never go there';
%d = ();
for (1 .. 5) { my ($c, $p) = lb_get('/lb/dr/headers', Cookie => 'RCROUTE=old'); $d{"$c $p"}++ }
is_deeply \%d, { "200 $ENV{RC_ORIGIN3_PORT}" => 5 }, 'drain: its sticky clients still go there';

ok $log->check, 'no errors or warnings in the log';
