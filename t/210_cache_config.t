# The cache's directives check their arguments when the configuration is
# read: `apachectl configtest` fails naming the file, the line and the
# reason (as t/105_proxy_config.t does for the proxy's).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest ();

my @bad = (
    ['RevCacheEnable maybe'                 => qr/RevCacheEnable: 'maybe' is not On or Off/],
    ['RevCacheEnable On Off'                => qr/RevCacheEnable takes one argument/],
    ['RevCacheSize 10'                      => qr/RevCacheSize: '10' is not a size from \d+ to/],
    ['RevCacheSize 12X'                     => qr/RevCacheSize: '12X' is not a size/],
    ['RevCacheSize 100G'                    => qr/RevCacheSize: '100G' is not a size/],
    ['RevCacheSize -1M'                     => qr/RevCacheSize: '-1M' is not a size/],
    ["<Location /x>\nRevCacheSize 32M\n</Location>" => qr/RevCacheSize not allowed in <Location> context/, 2],
    ["<VirtualHost 127.0.0.1:1>\nRevCacheSize 32M\n</VirtualHost>" => qr/cannot occur within <VirtualHost> section/, 2],
    ['RevCacheMaxObjectSize 0'              => qr/RevCacheMaxObjectSize: '0' is not a size/],
    ['RevCacheMaxObjectSize lots'           => qr/RevCacheMaxObjectSize: 'lots' is not a size/],
    ['RevCacheStatusHeader yes'             => qr/RevCacheStatusHeader: 'yes' is not On or Off/],
    ['RevCacheDefaultTTL -5'                => qr/RevCacheDefaultTTL: '-5' is not a positive time .* or Off/],
    ['RevCacheDefaultTTL abc'               => qr/RevCacheDefaultTTL: 'abc' is not a positive time/],
    ['RevCacheLockTimeout Off'              => qr/RevCacheLockTimeout: 'Off' is not a positive time/],
    ['RevCacheLockTimeout 0'                => qr/RevCacheLockTimeout: '0' is not a positive time/],
    ['RevCachePurge 1'                      => qr/RevCachePurge: '1' is not On or Off/],
    ['RevCacheIgnoreQueryString sometimes'  => qr/RevCacheIgnoreQueryString: 'sometimes' is not On or Off/],
    ['RevCacheKeyHeaders'                   => qr/RevCacheKeyHeaders needs at least one header name/],
    ['RevCacheKeyHeaders X-Ok "Bad Name"'   => qr/RevCacheKeyHeaders: 'Bad Name' is not a header name/],
    ['RevCacheHeuristicFraction 150'        => qr/RevCacheHeuristicFraction: '150' is not a percentage from 0 to 100/],
    ['RevCacheHeuristicFraction 10.5'       => qr/RevCacheHeuristicFraction: '10.5' is not a percentage/],
    ['RevCacheStaleIfError forever'         => qr/RevCacheStaleIfError: 'forever' is not a positive time/],
    ['RevCacheHitForMiss forever'           => qr/RevCacheHitForMiss: 'forever' is not a positive time/],
    ['RevCacheConvertHead sometimes'        => qr/RevCacheConvertHead: 'sometimes' is not On or Off/],
    ["<Directory /tmp>\nRevCacheEnable On\n</Directory>" => qr/cannot occur within <Directory> section/, 2],
    ['RevCacheQuickHandler maybe'           => qr/RevCacheQuickHandler: 'maybe' is not On or Off/],
    ['RevCacheQuickHandler'                 => qr/RevCacheQuickHandler takes one argument/],
    ["<Location /x>\nRevCacheQuickHandler On\n</Location>" => qr/RevCacheQuickHandler not allowed in <Location> context/, 2],
);
my $good = <<'EOF_GOOD';
RevCacheSize 16M
RevCacheMaxObjectSize 512K
RevCacheEnable Off
RevCacheStatusHeader On
RevCacheDefaultTTL Off
RevCacheLockTimeout 500ms
RevCacheHitForMiss 30s
RevCacheConvertHead Off
RevCachePurge Off
RevCacheIgnoreQueryString Off
RevCacheKeyHeaders X-Device Accept-Language
RevCacheHeuristicFraction 10%
RevCacheStaleIfError 1h
<Location /l>
    RevProxyPass http://127.0.0.1:2/l
    RevCacheEnable On
    RevCacheDefaultTTL 5mi
    RevCacheHeuristicFraction 0
    RevCacheStaleIfError Off
    RevCachePurge On
    RevCacheLockTimeout 2
</Location>
<LocationMatch ^/m>
    RevCacheEnable On
</LocationMatch>
RevCacheQuickHandler On
<VirtualHost 127.0.0.1:1>
    RevProxyPass /v/ http://127.0.0.1:3/
    RevCacheEnable On
    RevCacheIgnoreQueryString On
    RevCacheQuickHandler Off
</VirtualHost>
EOF_GOOD

plan tests => 2 * @bad + 1;

sub configtest { RcTest::configtest(@_) }

RcTest::check_bad_configs(\@bad);

my ($rc, $out) = configtest($good);
ok $rc == 0 && $out =~ /Syntax OK/, 'every cache directive accepted with good values'
    or diag $out;
