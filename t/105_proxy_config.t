# Every directive checks its arguments when the configuration is read:
# `apachectl configtest` fails naming the file, the line and the reason.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest ();

my @bad = (
    ['RevProxyPass /x/ ftp://127.0.0.1/'            => qr/scheme 'ftp' is not supported/],
    ['RevProxyPass /x/ http:///nohost'              => qr/is not an absolute URL/],
    ['RevProxyPass /x/ http://h:99999/'             => qr/bad port|not an absolute URL/],
    ['RevProxyPass /x/ http://h/?q=1'               => qr/may not have a query/],
    ['RevProxyPass /x/'                             => qr/needs a backend URL/],
    ['RevProxyPass x/ http://h/'                    => qr/needs a path prefix/],
    ['RevProxyPass /x/ http://h/ timeout=abc'       => qr/timeout: 'abc' is not a positive time/],
    ['RevProxyPass /x/ http://h/ timeout=0'         => qr/timeout: '0' is not a positive time/],
    ['RevProxyPass /x/ http://h/ connecttimeout=-1' => qr/connecttimeout: '-1'/],
    ['RevProxyPass /x/ http://h/ keepalive=maybe'   => qr/keepalive: 'maybe' is not On or Off/],
    ['RevProxyPass /x/ http://h/ maxidle=-3'        => qr/maxidle: '-3' is not a whole number/],
    ['RevProxyPass /x/ http://h/ colour=blue'       => qr/unknown option 'colour'/],
    ['RevProxyPass /x/ http://h/ novalue'           => qr/option 'novalue' is not key=value/],
    ['RevProxyPass /x/ ! timeout=1'                 => qr/takes no options/],
    ["RevProxyPass /x/ http://h/\nRevProxyPass /x/ http://g/" => qr/already defined/, 2],
    ["<LocationMatch ^/r>\nRevProxyPass http://h/\n</LocationMatch>" => qr/only allowed at server level or in <Location PATH>/, 2],
    ["<Location /l>\nRevProxyPass /other http://h/\n</Location>" => qr/takes no prefix, or exactly '\/l'/, 2],
    ["<Location /l>\nRevProxyPass http://h/\nRevProxyPass http://g/\n</Location>" => qr/given twice/, 3],
    ["<Directory /tmp>\nRevProxyPass http://h/\n</Directory>" => qr/cannot occur within <Directory>/, 2],
    ['RevProxyPassReverse /x/ nonsense'             => qr/RevProxyPassReverse: 'nonsense' is not an absolute URL/],
    ['RevProxyPassReverse http://h/'                => qr/needs PREFIX URL outside <Location>/],
    ['RevProxyPreserveHost perhaps'                 => qr/must be On or Off/],
    ['RevProxyForwarded sometimes'                  => qr/'sometimes' is not On, Off, RFC7239 or Both/],
    ['RevProxyTimeout 5x'                           => qr/RevProxyTimeout: '5x' is not a positive time/],
    ['RevProxyConnectTimeout never'                 => qr/RevProxyConnectTimeout: 'never'/],
    ['RevProxyPoolMaxIdle many'                     => qr/RevProxyPoolMaxIdle: 'many' is not a whole number/],
    ['RevProxyPoolIdleTimeout 0'                    => qr/RevProxyPoolIdleTimeout: '0' is not a positive time/],
);
my $good = <<'EOF_GOOD';
RevProxyPass /a/ http://127.0.0.1:1/ timeout=30 connecttimeout=500ms keepalive=On maxidle=8 idlettl=1mi
RevProxyPass /a/b/ !
RevProxyPass /c http://[::1]:8080/base
RevProxyPassReverse /a/ http://127.0.0.1:1/
RevProxyPreserveHost On
RevProxyForwarded Both
RevProxyTimeout 30
RevProxyConnectTimeout 2s
RevProxyPoolMaxIdle 4
RevProxyPoolIdleTimeout 90
<Location /l>
    RevProxyPass http://127.0.0.1:2/l
    RevProxyPassReverse http://127.0.0.1:2/l
</Location>
<VirtualHost 127.0.0.1:1>
    RevProxyPass /v/ http://127.0.0.1:3/
</VirtualHost>
EOF_GOOD

plan tests => 2 * @bad + 1;

sub configtest { RcTest::configtest(@_) }

RcTest::check_bad_configs(\@bad);

my ($rc, $out) = configtest($good);
ok $rc == 0 && $out =~ /Syntax OK/, 'every directive accepted with good values'
    or diag $out;
