# The cache in front of a balancer: a miss goes to a member (and ends
# its reservation), a hit is served without one.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use lib 't/lib';
use RcTest qw(lb_get parallel_get);

plan tests => 6, need_lwp;

my $log = RcTest::LogWatch->new;
my $path = '/lb/cached/headers?h=Cache-Control:max-age%3D60&k=' . time . $$;

my ($code, $port, $res) = lb_get($path);
is $code, 200, 'miss through the balancer: 200';
like $res->header('Cache-Status') // '', qr/fwd=uri-miss.*stored/, 'stored';
($code, my $port2, $res) = lb_get($path);
like $res->header('Cache-Status') // '', qr/^revcache; hit/, 'then a hit';
is $port2, $port, 'the hit carries the stored response of that member';

# Concurrent misses through the balancer.
my @r = parallel_get(4, 10, sub { '/lb/cached/headers?k=' . rand() });
is scalar(grep { !/^200 / } @r), 0, 'concurrent misses: all 200';

ok $log->check, 'no errors or warnings in the log';
