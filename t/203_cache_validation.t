# Validation: a stale entry is revalidated with If-None-Match /
# If-Modified-Since, a 304 updates the stored headers and serves the
# stored body; client conditionals are answered 304 from the cache;
# no-cache and must-revalidate are respected.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Apache::TestRequest qw(GET HEAD);
use HTTP::Date qw(time2str);
use lib 't/lib';
use RcTest qw(origin_count);

plan tests => 37, need_lwp;

my $log = RcTest::LogWatch->new;
my $res;

sub seen { my $n = shift; origin_count(qr{ uri=/ctr/$n[? ]}) }
sub cs   { $_[0]->header('Cache-Status') // '' }

# ETag: the stale entry is revalidated; the 304 refreshes it.
my $v = '/c/ctr/v1?etag=1&cc=max-age%3D1&cc304=max-age%3D60';
$res = GET $v;
is $res->header('ETag'), '"v1-1"', 'stored with its ETag';
sleep 2;
$res = GET $v;
is $res->code, 200, 'revalidated: 200 to the client';
is $res->content, "v1 1\n", 'revalidated: the stored body';
is $res->header('X-Count'), 2, 'revalidated: the headers of the 304 merged in';
like cs($res), qr/^revcache; fwd=stale; fwd-status=304; ttl=(59|60)$/, 'revalidated: Cache-Status fwd=stale, fwd-status=304';
is $res->header('Cache-Control'), 'max-age=60', 'revalidated: Cache-Control of the 304 replaced the stored one';
is seen('v1'), 2, 'revalidation: one conditional request';
$res = GET $v;
like cs($res), qr/^revcache; hit/, 'after the 304 the entry is fresh again';
is $res->header('X-Count'), 2, 'the merged headers were stored';
is $res->content, "v1 1\n", 'the body was kept';
is seen('v1'), 2, 'no further origin request';

# Last-Modified: revalidated with If-Modified-Since.
my $lm = time - 1000;
my $l = "/c/ctr/v2?lm=$lm&cc=max-age%3D1&cc304=max-age%3D60";
GET $l;
sleep 2;
$res = GET $l;
like cs($res), qr/fwd=stale; fwd-status=304/, 'If-Modified-Since revalidation: 304';
is $res->content, "v2 1\n", 'If-Modified-Since: the stored body';
is seen('v2'), 2, 'If-Modified-Since: one conditional request';

# A changed resource: the origin answers 200 and the entry is replaced.
# (/ctr with etag: a request without a matching If-None-Match gets 200;
# ver changes the ETag, but is part of the key, so use no-cache instead.)
my $n = '/c/ctr/v3?etag=1&cc=no-cache';
$res = GET $n;
like cs($res), qr/stored/, 'no-cache response: stored';
$res = GET $n;
like cs($res), qr/^revcache; fwd=stale; fwd-status=304/, 'no-cache: validated on every use';
is $res->content, "v3 1\n", 'no-cache: 304 serves the stored body';
$res = GET $n;
is seen('v3'), 3, 'no-cache: every request reached the origin (conditionally)';

# Client conditionals are answered from a fresh entry.
my $c = '/c/ctr/v4?etag=1&lm=' . (time - 500) . '&cc=max-age%3D60';
GET $c;
$res = GET $c, 'If-None-Match' => '"v4-1"';
is $res->code, 304, 'If-None-Match matching: 304 from the cache';
is $res->header('ETag'), '"v4-1"', '304 carries the ETag';
like cs($res), qr/^revcache; hit/, '304 from the cache: a hit';
is $res->content, '', '304: no body';
$res = GET $c, 'If-None-Match' => 'W/"v4-1", "other"';
is $res->code, 304, 'If-None-Match: weak comparison, lists';
$res = GET $c, 'If-None-Match' => '"other"';
is $res->code, 200, 'If-None-Match not matching: 200';
is $res->content, "v4 1\n", 'If-None-Match not matching: the stored body';
$res = GET $c, 'If-Modified-Since' => time2str(time);
is $res->code, 304, 'If-Modified-Since after Last-Modified: 304';
$res = GET $c, 'If-Modified-Since' => time2str(time - 100000);
is $res->code, 200, 'If-Modified-Since before Last-Modified: 200';
$res = HEAD $c, 'If-None-Match' => '"v4-1"';
is $res->code, 304, 'HEAD with If-None-Match: 304';
is seen('v4'), 1, 'client conditionals: nothing reached the origin';

# must-revalidate: a stale entry is never served without validation,
# even to a client that accepts stale copies.
my $m = '/c/ctr/v5?etag=1&cc=max-age%3D1,must-revalidate&cc304=max-age%3D1,must-revalidate';
GET $m;
sleep 2;
$res = GET $m, 'Cache-Control' => 'max-stale=600';
like cs($res), qr/fwd=stale; fwd-status=304/, 'must-revalidate: validated despite max-stale';
is seen('v5'), 2, 'must-revalidate: the origin was asked';
# ... while an ordinary stale entry is served to max-stale.
my $o = '/c/ctr/v6?etag=1&cc=max-age%3D1';
GET $o;
sleep 2;
$res = GET $o, 'Cache-Control' => 'max-stale=600';
like cs($res), qr/^revcache; hit; ttl=-\d+; detail=max-stale/, 'no must-revalidate: served stale to max-stale';
is seen('v6'), 1, 'no must-revalidate: the origin was not asked';

# A request with its own conditionals on a stale entry: we revalidate
# with our validators, then answer the client's conditional.
$res = GET $o, 'If-None-Match' => '"v6-1"';
is $res->code, 304, 'stale entry + client If-None-Match: 304';
like cs($res), qr/fwd=stale; fwd-status=304/, 'stale entry + client conditional: revalidated first';
is seen('v6'), 2, 'stale entry + client conditional: one origin request';

ok $log->check, 'no unexpected errors in the log';
