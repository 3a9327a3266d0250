# Robustness: children SIGKILLed under load (inside lookups, writes,
# fills) leave the cache working and serving exact bodies; a graceful
# restart (SIGUSR1) with the same RevCacheSize keeps the cache.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET);
use Time::HiRes qw(time sleep);
use POSIX ();
use File::Temp ();
use lib 't/lib';
use RcTest qw(origin_count raw parse_raw);

plan tests => 13, need_lwp;

my $log = RcTest::LogWatch->new;
my $port = Apache::Test::vars('port');
my $pidfile = Apache::Test::vars('t_logs') . '/httpd.pid';
my $ma = 'h=Cache-Control:max-age%3D600';

sub pattern { my ($alpha, $len) = @_; substr($alpha x (int($len / length($alpha)) + 1), 0, $len) }
sub get_raw {
    my ($path) = @_;
    return parse_raw(scalar raw("GET $path HTTP/1.1\r\nHost: localhost:$port\r\nConnection: close\r\n\r\n", timeout => 10));
}
# What a path must return: [expected body, content-length]
sub expect_body {
    my ($path) = @_;
    return pattern('0123456789', $1) if $path =~ m{^/c/length\?size=(\d+)};
    return pattern(join('', 'a' .. 'z'), $1 * $2) if $path =~ m{^/c/chunked\?n=(\d+)&size=(\d+)};
    return undef;
}
sub children {
    open my $fh, '<', $pidfile or return ();
    chomp(my $ppid = <$fh>);
    return grep { /^\d+$/ } split /\s+/, `pgrep -P $ppid`;
}

# A set of stored entries of different sizes, in many blocks.
my @keys = map { "/c/length?size=" . (1000 + $_ * 7919) . "&r=$_&$ma" } 1 .. 12;
push @keys, map { "/c/chunked?n=$_&size=3001&r=$_&$ma" } 1 .. 6;
get_raw($_) for @keys;
my $ok = grep { my $r = get_raw($_); $r->{code} == 200 && $r->{body} eq expect_body($_) } @keys;
is $ok, scalar @keys, 'entries stored and served exactly before the storm';

# Load: 6 clients for ~5s, hits on the stored keys and misses that fill
# new ones; meanwhile a child is SIGKILLed every 0.25s.
my $dir = File::Temp::tempdir(CLEANUP => 1);
my $end = time + 5;
my @clients;
for my $c (1 .. 6) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my ($good, $broken, $bad, $n) = (0, 0, 0, 0);
        srand($$);
        while (time < $end) {
            my $path = rand() < 0.7 ? $keys[rand @keys]
                     : "/c/length?size=" . (500 + int rand 60000) . "&m=$c-" . $n++ . "&$ma";
            my $r = eval { get_raw($path) };
            my $want = expect_body($path);
            if (!$r || $r->{code} != 200 || !defined $r->{h}{'content-length'}
                || length($r->{body}) != $r->{h}{'content-length'}) {
                $broken++;      # the connection died with its child
            }
            elsif ($r->{body} eq $want) {
                $good++;
            }
            else {
                $bad++;
            }
        }
        open my $fh, '>', "$dir/$c" or POSIX::_exit(1);
        print $fh "$good $broken $bad\n";
        close $fh;
        POSIX::_exit(0);
    }
    push @clients, $pid;
}
my $kills = 0;
while (time < $end) {
    sleep 0.25;
    my @kids = children();
    next unless @kids;
    $kills += kill 'KILL', $kids[rand @kids];
}
waitpid $_, 0 for @clients;
my ($good, $broken, $bad) = (0, 0, 0);
for my $c (1 .. 6) {
    open my $fh, '<', "$dir/$c" or next;
    my @v = split ' ', scalar <$fh>;
    $good += $v[0]; $broken += $v[1]; $bad += $v[2];
}
diag "storm: $kills children killed, $good good, $broken broken by a kill, $bad wrong";
ok $kills >= 5, "children were killed ($kills)";
ok $good > 100, "requests were served during the storm ($good)";
is $bad, 0, 'no complete response had a wrong body';

# Afterwards: the server and its cache work.
sleep 1.5;   # the parent replaces the children
$ok = grep { my $r = get_raw($_); $r->{code} == 200 && $r->{body} eq expect_body($_) } @keys;
is $ok, scalar @keys, 'every stored entry still served exactly after the storm';
my $n0 = origin_count(qr{uri=/length\?size=1000&r=after});
my $r1 = get_raw("/c/length?size=1000&r=after&$ma");
my $r2 = get_raw("/c/length?size=1000&r=after&$ma");
like $r2->{h}{'cache-status'} // '', qr/^revcache; hit/, 'a new entry is stored and hit after the storm';
is origin_count(qr{uri=/length\?size=1000&r=after}), 1, 'after the storm: one origin request for it';
my $st = GET '/revcache-status?json';
like $st->content, qr/"corrupt": 0,/, 'no validation failures counted';

# Graceful restart keeps the cache.
my $w = RcTest::LogWatch->new;
open my $fh, '<', $pidfile or die "$pidfile: $!";
chomp(my $ppid = <$fh>);
ok kill('USR1', $ppid), 'graceful restart (SIGUSR1)';
my $kept;
for (1 .. 100) {
    ($kept) = grep { /RC00314: cache segment of \d+ bytes kept/ } $w->lines;
    last if $kept;
    sleep 0.1;
}
like $kept // '', qr/kept \(generation [2-9]/, 'the segment was kept, its generation bumped';
sleep 1;
my $r3 = get_raw($keys[0]);
like $r3->{h}{'cache-status'} // '', qr/^revcache; hit/, 'a hit after the graceful restart';
is $r3->{body}, expect_body($keys[0]), 'the body survived the restart';

ok $log->check(qr/RC00201|RC0020[3-7]|AH00052|AH00169|AH00171|AH00493|AH10034|AH10392|scoreboard|long lost child/),
    'no unexpected errors in the log';
