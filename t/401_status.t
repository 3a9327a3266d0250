# The revcache-status page: its counters move by exactly what the test
# did, its three formats (JSON, Prometheus text, HTML) are well formed and
# escape what they print, and httpd's access control stands in front.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use Test::More import => ['!plan'];
use JSON::PP ();
use lib 't/lib';
use RcTest qw(lb_get);

plan tests => 34, need_lwp;

my $log = RcTest::LogWatch->new;
my $amp_url = "http://127.0.0.1:$ENV{RC_ORIGIN2_PORT}/echo/a&b<c>\"d";
my $plain_url = "http://127.0.0.1:$ENV{RC_ORIGIN3_PORT}/echo";

sub status_json {
    my $res = GET '/revcache-status?json';
    return (undef, $res) unless $res->code == 200;
    my $j = eval { JSON::PP->new->decode($res->content) };
    Test::More::diag("bad JSON: $@") if $@;
    return ($j, $res);
}

sub st401 {
    my ($j) = @_;
    my ($b) = grep { $_->{name} eq 'st401' } @{ $j->{balancers} || [] };
    return $b;
}

sub member_sum {
    my ($b, $f) = @_;
    my $n = 0;
    $n += $_->{$f} for @{ $b->{members} };
    return $n;
}

# --- before ---------------------------------------------------------------
my ($j0, $res0) = status_json();
ok $j0, 'GET ?json: 200 and valid JSON';
is $res0->header('Content-Type'), 'application/json', 'JSON content type';
is $res0->header('Cache-Control'), 'no-store', 'never cached';
ok $j0->{cache} && defined $j0->{cache}{objects}
   && defined $j0->{cache}{bytes_used}, 'cache.objects and cache.bytes_used';
like $res0->content, qr/"hits": \d+/, 'the old "hits": N form still there';
my $b0 = st401($j0);
ok $b0, 'balancer st401 listed';

# --- traffic --------------------------------------------------------------
# One miss that is stored, then exactly $hits hits.
my $hits = 7;
my $path = '/c/headers?h=Cache-Control:max-age%3D300&k=401-' . time . $$;
my $res = GET $path;
like $res->header('Cache-Status') // '', qr/stored/, 'miss stored';
my $nhit = 0;
for (1 .. $hits) {
    $res = GET $path;
    $nhit++ if ($res->header('Cache-Status') // '') =~ /^revcache; hit/;
}
is $nhit, $hits, "$hits hits served";

# Balancer traffic: $n requests through st401.
my $n = 10;
my $ok = 0;
for (1 .. $n) {
    my ($code) = lb_get('/lb/st401/x');
    $ok++ if $code == 200;
}
is $ok, $n, "$n requests through st401 answered 200";

# --- after ----------------------------------------------------------------
my ($j1) = status_json();
my ($c0, $c1) = ($j0->{cache}, $j1->{cache});
is $c1->{hits} - $c0->{hits}, $hits, 'cache.hits grew by exactly the hits';
ok $c1->{misses} - $c0->{misses} >= 1, 'cache.misses grew';
is $c1->{stores} - $c0->{stores}, 1, 'cache.stores grew by one';
ok $c1->{objects} >= 1 && $c1->{bytes_used} > 0, 'objects and bytes_used';
is $c1->{bytes_used} % $c1->{block_size}, 0, 'bytes_used: whole blocks';
ok $c1->{entry_bytes} > 0 && $c1->{table_bytes} > $c1->{entries_total} * $c1->{entry_bytes},
    'entry_bytes and table_bytes (the preallocated descriptors are in the tables)';
ok $c1->{hit_ratio} > 0 && $c1->{hit_ratio} <= 1, 'hit_ratio in (0, 1]';

my $b1 = st401($j1);
is scalar(@{ $b1->{members} }), 2, 'st401: two members';
is member_sum($b1, 'requests') - member_sum($b0, 'requests'), $n,
    "st401: members' requests add up to $n";
is member_sum($b1, 'inflight'), 0, 'st401: nothing in flight';
is $b1->{method}, 'round-robin', 'st401: method';
is_deeply [ map { $_->{url} } @{ $b1->{members} } ], [ $amp_url, $plain_url ],
    'member URLs unescaped after JSON decoding';
is_deeply [ map { $_->{state} } @{ $b1->{members} } ], [ 'up', 'up' ],
    'members up';
is $j1->{workers}{scope}, 'per child process', 'workers: said per child';
ok((grep { $_->{url} eq $plain_url && $_->{pool} } @{ $j1->{workers}{list} }),
    'workers: the member worker listed with its pool');
ok $j1->{server}{generation} >= 0 && $j1->{server}{uptime} >= 0
   && $j1->{server}{version}, 'server: version, generation, uptime';

# --- Prometheus -----------------------------------------------------------
$res = GET '/revcache-status?prom';
is $res->code, 200, 'GET ?prom: 200';
my (@bad, %typed, %seen);
my $label = qr/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"/;
for my $l (split /\n/, $res->content) {
    if ($l =~ /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/) {
        $typed{$2} = $3 if $1 eq 'TYPE';
        next;
    }
    if ($l =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{$label(?:,$label)*\})? (-?[0-9.]+(?:e[+-]?\d+)?|NaN|[+-]Inf)$/) {
        push @bad, "untyped: $l" unless $typed{$1};
        $seen{$1}++;
        next;
    }
    push @bad, $l;
}
diag("bad line: $_") for @bad;
ok !@bad && keys %seen > 10, 'every line: # comment or name{labels} value';
like $res->content, qr/^revcache_cache_hits_total $c1->{hits}$/m,
    'revcache_cache_hits_total';
my $esc = $amp_url =~ s/"/\\"/gr;
like $res->content,
    qr/^revcache_balancer_member_requests_total\{balancer="st401",member="\Q$esc\E",route="amp"\} \d+$/m,
    'member label with its quote escaped';

# --- HTML -----------------------------------------------------------------
$res = GET '/revcache-status?refresh=5';
is $res->code, 200, 'GET (HTML): 200';
my $html = $res->content;
ok index($html, 'echo/a&amp;b&lt;c&gt;&quot;d') >= 0
   && index($html, 'a&b<c>') < 0, 'member URL escaped in the HTML';
ok index($html, '<meta http-equiv="refresh" content="5">') >= 0
   && $html =~ /per child|this child process/, 'refresh; pools said per child';

# --- access control -------------------------------------------------------
$res = GET '/rc-status-denied';
is $res->code, 403, 'Require all denied in front of the handler: 403';

ok $log->check(qr/AH01630/), 'no unexpected errors in the log';
