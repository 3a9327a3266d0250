# Balancer directives are checked when the configuration is read:
# configtest fails naming the file, the line and the reason.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest ();

my $M = 'RevBalancerMember http://127.0.0.1:1/';
my @bad = (
    # [config, reason, line of the error (1 = the first line)]
    ["<RevBalancer p>\n$M\nRevBalancerMethod fastest\n</RevBalancer>" => qr/'fastest': RevBalancerMethod must be round-robin, least-conn, hash or p2c-ewma/, 3],
    ["<RevBalancer p>\n$M weight=0\n</RevBalancer>" => qr/weight '0' must be an integer from 1 to 100/, 2],
    ["<RevBalancer p>\n$M weight=heavy\n</RevBalancer>" => qr/weight 'heavy' must be an integer/, 2],
    ["<RevBalancer p>\n$M\n$M\n</RevBalancer>" => qr/RevBalancer p: duplicate member/, 3],
    ["<RevBalancer p>\n$M status=sleepy\n</RevBalancer>" => qr/status 'sleepy' must be backup, disabled or drain/, 2],
    ["<RevBalancer p>\n$M max=-1\n</RevBalancer>" => qr/max '-1' must be an integer/, 2],
    ["<RevBalancer p>\n$M route=a/b\n</RevBalancer>" => qr/route 'a\/b' must be 1 to 64 of/, 2],
    ["<RevBalancer p>\n$M colour=red\n</RevBalancer>" => qr/unknown parameter 'colour=red'/, 2],
    ["<RevBalancer p>\n$M timeout=soon\n</RevBalancer>" => qr/timeout: 'soon' is not a positive time/, 2],
    ["<RevBalancer p>\nRevBalancerMember ftp://h/\n</RevBalancer>" => qr/RevBalancerMember: 'ftp:\/\/h\/': scheme 'ftp' is not supported/, 2],
    ["<RevBalancer p>\n$M route=a\nRevBalancerMember http://h:2/ route=a\n</RevBalancer>" => qr/have the same route 'a'/, 1],
    ["<RevBalancer p>\n</RevBalancer>" => qr/RevBalancer p has no RevBalancerMember/, 1],
    ["<RevBalancer p>\n$M\n</RevBalancer>\n<RevBalancer p>\n$M\n</RevBalancer>" => qr/<RevBalancer p> is already defined at \S+:6/, 4],
    ["<RevBalancer a/b>\n$M\n</RevBalancer>" => qr/the name must be 1 to 64 of/, 1],
    ["<RevBalancer p>\n<RevBalancer q>\n$M\n</RevBalancer>\n</RevBalancer>" => qr/cannot be nested/, 2],
    [$M => qr/RevBalancerMember is only allowed inside <RevBalancer NAME>/, 1],
    ["<RevBalancer p>\n$M\nRevBalancerHashKey body\n</RevBalancer>" => qr/RevBalancerHashKey 'body': expected uri, header:NAME/, 3],
    ["<RevBalancer p>\n$M\nRevBalancerSticky JSESSIONID\n</RevBalancer>" => qr/RevBalancerSticky takes cookie=NAME/, 3],
    ["<RevBalancer p>\n$M\nRevHealthCheck interval=2s\n</RevBalancer>" => qr/RevHealthCheck needs uri=PATH/, 3],
    ["<RevBalancer p>\n$M\nRevHealthCheck uri=/h interval=often\n</RevBalancer>" => qr/RevHealthCheck: 'interval=often' needs a duration/, 3],
    ["<RevBalancer p>\n$M\nRevHealthCheck uri=/h expect=2zz\n</RevBalancer>" => qr/RevHealthCheck: expect '2zz' is not like 2xx or 200/, 3],
    ["<RevBalancer p>\n$M\nRevHealthCheck uri=/h fails=0\n</RevBalancer>" => qr/fails and passes must be 1 to 100/, 3],
    ["<RevBalancer p>\n$M\nRevHealthCheck uri=/h method=HEAD\n</RevBalancer>" => qr/RevHealthCheck: unknown parameter 'method=HEAD'/, 3],
    ["<RevBalancer p>\n$M\nRevBalancerEject fails=99\n</RevBalancer>" => qr/RevBalancerEject: fails must be 0 \(off\) to 32/, 3],
    ["<RevBalancer p>\n$M\nRevBalancerEject panic=maybe\n</RevBalancer>" => qr/RevBalancerEject: panic must be on or off/, 3],
    ["<RevBalancer p>\n$M\nRevBalancerEject cooldown=10s max-cooldown=5s\n</RevBalancer>" => qr/max-cooldown is shorter than cooldown/, 1],
    ["<RevBalancer p>\n$M\nRevBalancerSlowStart forever\n</RevBalancer>" => qr/RevBalancerSlowStart 'forever':/, 3],
    ["<RevBalancer p>\n$M\nRevBalancerRetries -1\n</RevBalancer>" => qr/RevBalancerRetries '-1' must be a whole number from 0 to 63/, 3],
    ["<RevBalancer p>\n$M\nRevBalancerWait abc\n</RevBalancer>" => qr/RevBalancerWait 'abc':/, 3],
    ["<RevBalancer p>\n$M\n</RevBalancer>\nRevProxyPass /x/ balancer://p/ timeout=5" => qr/balancer:\/\/NAME\/ takes no options/, 4],
    ["RevProxyPass /x/ balancer://a:b/" => qr/the balancer name must be 1 to 64 of/, 1],
    ["<Location /l>\n<RevBalancer p>\n$M\n</RevBalancer>\n</Location>" => qr/<RevBalancer not allowed in <Location> context/, 2],
);
my $good = <<'EOF_GOOD';
RevProxyPass /api/ balancer://pool/v1/
<RevBalancer pool>
    RevBalancerMember http://127.0.0.1:8081 weight=3 max=10 route=a timeout=5 connecttimeout=500ms keepalive=Off
    RevBalancerMember http://127.0.0.1:8082/base status=drain
    RevBalancerMember http://[::1]:8083 status=backup
    RevBalancerMethod hash
    RevBalancerHashKey cookie:session
    RevBalancerSticky cookie=ROUTE
    RevHealthCheck uri=/health interval=2s timeout=1s fails=3 passes=2 expect=2xx,301
    RevBalancerEject fails=3 window=10s cooldown=5s max-cooldown=60s panic=off
    RevBalancerSlowStart 10s
    RevBalancerRetries 2
    RevBalancerWait 500ms
</RevBalancer>
<VirtualHost 127.0.0.1:1>
    <RevBalancer other>
        RevBalancerMember http://127.0.0.1:8081
        RevBalancerMethod p2c-ewma
    </RevBalancer>
    RevProxyPass /o/ balancer://other
    RevProxyPass /p/ balancer://pool/
    <Location /l/>
        RevProxyPass balancer://other/sub/
    </Location>
</VirtualHost>
EOF_GOOD

plan tests => 2 * @bad + 3;

sub configtest { RcTest::configtest(@_) }

RcTest::check_bad_configs(\@bad, 2);

# An unknown balancer is found once the whole file is read: the error
# names the RevProxyPass's file and line.
my ($rc, $out, $file) = configtest("<RevBalancer p>\n$M\n</RevBalancer>\nRevProxyPass /x/ balancer://nope/");
isnt $rc, 0, 'configtest fails: unknown balancer in RevProxyPass';
like $out, qr/\Q$file\E:9: RevProxyPass balancer:\/\/nope\/: no <RevBalancer nope> is defined/,
    'file, line and reason named: unknown balancer' or diag $out;

($rc, $out) = configtest($good);
ok $rc == 0 && $out =~ /Syntax OK/, 'every balancer directive accepted with good values'
    or diag $out;
