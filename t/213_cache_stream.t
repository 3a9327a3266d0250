# Streamed collapsed forwarding: requests that find another one fetching
# their key stream the body as it is stored instead of waiting for the
# end of the fetch; a fetch broken off mid-body breaks their responses
# too (never a short body passed off as complete) and stores nothing; the
# fetching request's client leaving does not cut the others off.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use Test::More import => ['!plan'];
use Time::HiRes qw(time sleep);
use IO::Select;
use IO::Socket::INET;
use lib 't/lib';
use RcTest qw(origin_count parse_raw);

plan tests => 38, need_lwp;

my $log = RcTest::LogWatch->new;
my $prefork = Apache::Test::config()->{server}{mpm} eq 'prefork';

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub req  {
    my ($path, $method) = @_;
    return ($method // 'GET') . " $path HTTP/1.1\r\nHost: localhost\r\n"
         . "Connection: close\r\n\r\n";
}

# The body /ctr/NAME?size=S sends for its n-th request.
sub want_body {
    my ($name, $n, $size) = @_;
    my $t = "$name $n\n";
    my $abc = join '', 'a' .. 'z';
    $t .= substr($abc x (int($size / 26) + 2), 0, $size - length $t);
    return $t;
}

# Runs clients [delay, path, {abort_after => body bytes}] on their own
# sockets from one select loop; records when each got its head, its
# first body byte and its end (times relative to its own start).
sub streams {
    my @c = map { { delay => $_->[0], path => $_->[1], %{ $_->[2] // {} },
                    buf => '' } } @_;
    my $port = RcTest::front_port();
    my $sel = IO::Select->new;
    my $t0 = time;
    my $end = $t0 + 20;
    while (time < $end && grep { !$_->{done} } @c) {
        for my $c (grep { !$_->{sock} && !$_->{done} } @c) {
            next if time - $t0 < $c->{delay};
            $c->{sock} = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                               PeerPort => $port)
                or die "connect: $!";
            syswrite $c->{sock}, req($c->{path}, $c->{method});
            $c->{start} = time;
            $sel->add($c->{sock});
        }
        for my $s ($sel->can_read(0.01)) {
            my ($c) = grep { $_->{sock} && $_->{sock} == $s } @c;
            my $n = sysread($s, my $chunk, 65536);
            if (!$n) {
                $c->{done} = time - $c->{start};
                $sel->remove($s);
                close $s;
                next;
            }
            $c->{buf} .= $chunk;
            if (!defined $c->{hlen}
                && (my $i = index($c->{buf}, "\r\n\r\n")) >= 0) {
                $c->{hlen} = $i + 4;
            }
            next unless defined $c->{hlen};
            my $got = length($c->{buf}) - $c->{hlen};
            $c->{first} //= time - $c->{start} if $got > 0;
            if ($c->{abort_after} && $got >= $c->{abort_after}) {
                # leave with unread data: the server sees a reset
                $c->{done} = time - $c->{start};
                $c->{aborted} = 1;
                $sel->remove($s);
                close $s;
            }
        }
    }
    for my $c (@c) {
        $c->{r} = parse_raw($c->{buf});
        $c->{cs} = $c->{r}{h}{'cache-status'} // '';
        $c->{len} = length $c->{r}{body};
    }
    return @c;
}

sub streamed { grep { $_->{cs} =~ /; detail=streamed; collapsed$/ } @_ }

# The store's count of followers (status page JSON).
sub streams_counted {
    my $j = (GET '/revcache-status?json')->content;
    return $j =~ /"collapsed_streams": (\d+)/ ? $1 : -1;
}
my $counted = streams_counted();

# 1. Five concurrent GETs of a cold key whose origin sends 250,000 bytes
# in 20 pieces 100 ms apart (~1.9 s): one origin request, five complete
# identical bodies, and the waiters get their first bytes long before
# the fetch ends.
my $size = 250_000;
my $q = "size=$size&drip=20&dripms=100&h=Cache-Control:max-age%3D60";
my @c = streams(map { [0.05 * $_, "/c/ctr/st1?$q"] } 0 .. 4);
is seen('st1'), 1, 'five concurrent misses: one origin request';
my $want = want_body('st1', 1, $size);
is scalar(grep { $_->{r}{code} == 200 && $_->{r}{body} eq $want } @c), 5,
    'all five got the whole body, byte for byte';
like $c[0]{cs}, qr/^revcache; fwd=uri-miss; fwd-status=200; stored; ttl=\d+$/,
    'the first fetched and stored it';
my @f = streamed(@c);
cmp_ok scalar(@f), '>=', $prefork ? 2 : 4, 'the others streamed it (Cache-Status)';
like $f[0]{cs}, qr/^revcache; fwd=uri-miss; fwd-status=200; ttl=\d+; detail=streamed; collapsed$/,
    'streamed: Cache-Status';
is scalar(grep { ($_->{r}{h}{'content-length'} // '') eq $size } @f), scalar(@f),
    'streamed: the backend\'s Content-Length';
ok !(grep { $_->{first} >= 1 } @f),
    sprintf 'streamed: first body bytes at once (%s s)',
    join ' ', map { sprintf '%.2f', $_->{first} } @f;
ok !(grep { $_->{done} < 1.5 } @f),
    sprintf 'streamed: the end came with the origin\'s (%s s)',
    join ' ', map { sprintf '%.2f', $_->{done} } @f;
is streams_counted() - $counted, scalar(@f),
    'the status page counts them (collapsed_streams)';
my $hit = parse_raw(RcTest::raw(req("/c/ctr/st1?$q")));
like $hit->{h}{'cache-status'}, qr/^revcache; hit; ttl=\d+$/, 'then stored: a hit';
is $hit->{body}, $want, 'the hit: the same bytes';

# 2. Requests that arrive mid-fetch get the whole body: what is stored
# at once, the rest as it comes.
@c = streams([0, "/c/ctr/st2?$q"], [0.7, "/c/ctr/st2?$q"],
             [1.3, "/c/ctr/st2?$q"]);
is seen('st2'), 1, 'late arrivals: one origin request';
$want = want_body('st2', 1, $size);
is scalar(grep { $_->{r}{body} eq $want } @c), 3, 'late arrivals: whole bodies';
@f = streamed(@c);
is scalar(@f), 2, 'late arrivals streamed';
ok !(grep { $_->{first} >= 0.5 } @f),
    sprintf 'late arrivals: the stored part at once (%s s)',
    join ' ', map { sprintf '%.2f', $_->{first} } @f;

# 3. The origin breaks off mid-body (closes after 100,000 of 250,000
# bytes): the fetching request and its followers all see a broken
# response (closed before Content-Length), nothing is stored.
my $cut = "size=$size&drip=10&dripms=150&cut=100000&h=Cache-Control:max-age%3D60";
@c = streams(map { [0.1 * $_, "/c/ctr/st3?$cut"] } 0 .. 2);
is seen('st3'), 1, 'broken off: one origin request';
is scalar(grep { $_->{r}{code} == 200 } @c), 3, 'broken off: all had begun (200)';
is scalar(grep { ($_->{r}{h}{'content-length'} // '') eq $size } @c), 3,
    'broken off: all announced the full length';
is scalar(grep { $_->{len} < $size && $_->{done} } @c), 3,
    sprintf 'broken off: all closed short (%s bytes)', join ' ', map { $_->{len} } @c;
cmp_ok scalar(streamed(@c)), '>=', 1, 'broken off: followers were streaming';
my $next = parse_raw(RcTest::raw(req("/c/ctr/st3?$cut")));
like $next->{h}{'cache-status'} // '', qr/^revcache; fwd=uri-miss/,
    'broken off: nothing stored, the next request goes to the origin';
is seen('st3'), 2, 'broken off: the origin saw it';

# 4. The fetching request's client leaves mid-body (after 60,000 bytes):
# its followers still get the whole body, and it is stored.
@c = streams([0, "/c/ctr/st4?$q", { abort_after => 60_000 }],
             [0.2, "/c/ctr/st4?$q"], [0.3, "/c/ctr/st4?$q"]);
ok $c[0]{aborted}, 'owner left: its client closed mid-body';
$want = want_body('st4', 1, $size);
is scalar(grep { $_->{r}{body} eq $want } @c[1, 2]), 2,
    'owner left: the followers got the whole body';
is scalar(streamed(@c[1, 2])), 2, 'owner left: they streamed it';
$hit = parse_raw(RcTest::raw(req("/c/ctr/st4?$q")));
like $hit->{h}{'cache-status'}, qr/^revcache; hit/, 'owner left: stored all the same';
is $hit->{body}, $want, 'owner left: the stored bytes';
is seen('st4'), 1, 'owner left: one origin request';

# 5. Chunked from the origin (no Content-Length): the followers' bodies
# are complete all the same.
my $ch = "size=$size&drip=10&dripms=100&chunked=1&h=Cache-Control:max-age%3D60";
@c = streams(map { [0.05 * $_, "/c/ctr/st5?$ch"] } 0 .. 2);
$want = want_body('st5', 1, $size);
is seen('st5'), 1, 'chunked: one origin request';
is scalar(grep { $_->{r}{body} eq $want } @c), 3, 'chunked: whole bodies';
cmp_ok scalar(streamed(@c)), '>=', 1, 'chunked: streamed';

# 6. A chunked body that turns out larger than RevCacheMaxObjectSize
# (256K): the fetching request gets it whole, uncached; those streaming
# it are cut off (the known cost of streaming an unannounced length).
my $big = 300_000;
my $tb = "size=$big&drip=10&dripms=100&chunked=1&h=Cache-Control:max-age%3D60";
@c = streams(map { [0.1 * $_, "/c/ctr/st6?$tb"] } 0 .. 1);
is $c[0]{r}{body}, want_body('st6', 1, $big), 'too big: the fetching request got it whole';
ok $c[1]{cs} =~ /detail=streamed/ && $c[1]{len} < $big
   && $c[1]{buf} !~ /\r\n0\r\n\r\n$/,
    "too big: the follower's response ended broken ($c[1]{len} bytes, no last chunk)";

# 7. A Vary'd answer is stored under a variant the waiters did not know:
# they wait for the end, as before, and are served the stored variant.
my $vq = "size=$size&drip=5&dripms=100&h=Cache-Control:max-age%3D60&h=Vary:X-Dev";
@c = streams(map { [0.1 * $_, "/c/ctr/st7?$vq"] } 0 .. 1);
is scalar(grep { $_->{r}{body} eq want_body('st7', 1, $size) } @c), 2,
    'Vary: whole bodies';
like $c[1]{cs}, qr/^revcache; hit; ttl=\d+; collapsed$/, 'Vary: the waiter got the stored variant';

# 8. A HEAD miss fetched as a GET (RevCacheConvertHead): a GET arriving
# meanwhile streams what that fetch stores.
@c = streams([0, "/c/ctr/st8?$q", { method => 'HEAD' }],
             [0.2, "/c/ctr/st8?$q"]);
is $c[1]{r}{body}, want_body('st8', 1, $size), 'after a HEAD: the GET got the whole body';
like $c[1]{cs}, qr/detail=streamed; collapsed$/, 'after a HEAD: streamed';

ok $log->check(qr/RC00201|RC00339/), 'no unexpected errors in the log';
