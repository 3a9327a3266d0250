# Collapsed forwarding: concurrent misses (and revalidations) of one key
# send one request to the origin and the others are served its result;
# an uncacheable answer releases the waiters to go themselves; a waiter
# waits at most RevCacheLockTimeout.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(time);
use lib 't/lib';
use RcTest qw(origin_count parallel parse_raw);

plan tests => 26, need_lwp;

my $log = RcTest::LogWatch->new;

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub req  { "GET $_[0] HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" }
sub many {
    my ($n, $path) = @_;
    my $t0 = time;
    my @r = map { parse_raw($_) } parallel($n, req($path), timeout => 20);
    return (time - $t0, @r);
}

# 20 concurrent requests for one cold, slow key: one origin request.
my ($t, @r) = many(20, '/c/ctr/k1?ms=1000&h=Cache-Control:max-age%3D60');
is seen('k1'), 1, '20 concurrent misses: exactly one origin request';
is scalar(grep { $_->{code} == 200 } @r), 20, 'all 20 got 200';
is scalar(grep { $_->{body} eq "k1 1\n" } @r), 20, 'all 20 got the one answer';
# (those that came once the head was stored streamed the fetch: t/212)
my $from_cache = qr/^revcache; (?:hit; ttl=\d+|fwd=uri-miss; fwd-status=200; ttl=\d+; detail=streamed; collapsed)(?:; collapsed)?$/;
is scalar(grep { ($_->{h}{'cache-status'} // '') =~ $from_cache } @r), 19,
    '19 were served from the cache';
# (prefork starts with 4 children: later connections may only be
# accepted after the fill, as plain hits)
my $need = Apache::Test::config()->{server}{mpm} eq 'prefork' ? 3 : 15;
cmp_ok scalar(grep { ($_->{h}{'cache-status'} // '') =~ /^revcache; (?:hit|fwd=uri-miss).*; collapsed$/ } @r), '>=', $need,
    'those that came during the fetch waited for it (Cache-Status collapsed)';
is scalar(grep { ($_->{h}{'cache-status'} // '') =~ /fwd=uri-miss; fwd-status=200; stored/ } @r), 1,
    'one fetched and stored';
ok $t < 4, sprintf 'waiters did not queue one after another (%.1fs)', $t;

# An uncacheable answer releases the waiters at once: each goes itself.
($t, @r) = many(5, '/c/ctr/k2?ms=1000&h=Cache-Control:no-store');
is seen('k2'), 5, 'uncacheable: every request reached the origin';
is scalar(grep { $_->{code} == 200 && $_->{body} =~ /^k2 \d\n$/ } @r), 5, 'uncacheable: all answered';
is scalar(grep { ($_->{h}{'cache-status'} // '') =~ /detail=no-store; collapsed$/ } @r), 4,
    'uncacheable: four waited once, then went to the origin';
ok $t < 3.5, sprintf 'uncacheable: released when the head arrived, not serialised (%.1fs)', $t;

# RevCacheLockTimeout 1: a slow fetch (3s) does not hold waiters longer.
($t, @r) = many(4, '/clock/ctr/k3?ms=3000&h=Cache-Control:max-age%3D60');
is seen('k3'), 4, 'lock timeout: the waiters went to the origin themselves';
is scalar(grep { $_->{body} =~ /^k3 \d\n$/ } @r), 4, 'lock timeout: all answered';
ok $t < 6, sprintf 'lock timeout: waited about 1s, not 3s (%.1fs)', $t;

# Concurrent revalidations of one stale entry collapse too.
my $v = '/c/ctr/k4?etag=1&ms=1000&cc=max-age%3D1&cc304=max-age%3D60';
my $first = parse_raw(RcTest::raw(req($v)));
is $first->{body}, "k4 1\n", 'revalidation: stored';
sleep 2;
($t, @r) = many(10, $v);
is seen('k4'), 2, '10 concurrent revalidations: one origin request';
is scalar(grep { $_->{body} eq "k4 1\n" } @r), 10, 'revalidation: all got the stored body';

# Hit-for-miss: once a key answered uncacheable, concurrent requests for
# it do not queue behind one another's fetch (RevCacheHitForMiss, 120s
# by default); a cacheable answer is stored over the marker.
sub collapsed { scalar grep { ($_->{h}{'cache-status'} // '') =~ /; collapsed$/ } @_ }
parse_raw(RcTest::raw(req('/c/ctr/hfm1?h=Cache-Control:no-store&ms=1000')));
($t, @r) = many(5, '/c/ctr/hfm1?h=Cache-Control:no-store&ms=1000');
is seen('hfm1'), 6, 'hit-for-miss: every request reached the origin';
is collapsed(@r), 0, 'hit-for-miss: nobody waited for another fetch';
ok $t < 1.9, sprintf 'hit-for-miss: the five ran side by side (%.1fs)', $t;
my $h2 = '/ckey/ctr/hfm2?h=Cache-Control:';
parse_raw(RcTest::raw(req("${h2}no-store")));
my $s2 = parse_raw(RcTest::raw(req("${h2}max-age%3D60")));
like $s2->{h}{'cache-status'}, qr/fwd=uri-miss; fwd-status=200; stored/,
    'hit-for-miss: a cacheable answer is stored over the marker';
$s2 = parse_raw(RcTest::raw(req("${h2}max-age%3D60")));
like $s2->{h}{'cache-status'}, qr/^revcache; hit/, 'hit-for-miss: and served';
is seen('hfm2'), 2, 'hit-for-miss: two origin requests for three';

# RevCacheHitForMiss Off: the waiters queue as before the marker existed.
parse_raw(RcTest::raw(req('/chfmoff/ctr/hfm3?h=Cache-Control:no-store&ms=1000')));
($t, @r) = many(5, '/chfmoff/ctr/hfm3?h=Cache-Control:no-store&ms=1000');
cmp_ok collapsed(@r), '>=', $need == 15 ? 4 : 1,
    'RevCacheHitForMiss Off: they waited for the fetch (four, unless prefork ran out of children)';
# RevCacheHitForMiss 1: the marker is gone a second later.
parse_raw(RcTest::raw(req('/chfm1/ctr/hfm4?h=Cache-Control:no-store&ms=1000')));
sleep 1.3;
($t, @r) = many(5, '/chfm1/ctr/hfm4?h=Cache-Control:no-store&ms=1000');
# (prefork: connections beyond its free children are accepted after the
# fetch, which has left a new marker: they go side by side, as they should)
cmp_ok collapsed(@r), '>=', $need == 15 ? 4 : 1,
    'RevCacheHitForMiss 1: expired, the waiters collapse again';

ok $log->check, 'no unexpected errors in the log';
