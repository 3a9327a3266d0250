#!/usr/bin/perl
# Self-test for t/lib/RcOrigin.pm:  perl t/lib/rc_origin_selftest.pl
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use IO::Socket::INET;
use POSIX ();
use File::Temp qw(tempdir);
use Time::HiRes qw(time);
use Errno qw(ECONNRESET ECONNREFUSED);
use Test::More;
use RcOrigin;

$SIG{ALRM} = sub { die "self-test timed out\n" };
alarm 60;

my $dir = tempdir(CLEANUP => 1);
my $log = "$dir/origin.log";

my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                               Proto => 'tcp', Listen => 128, ReuseAddr => 1)
    or die "listen: $@";
my $port = $ls->sockport;
my $pid  = RcOrigin::spawn(listen_sock => $ls, log => $log);
ok($pid > 0, "spawned server pid $pid on port $port");
ok(!defined fileno($ls), 'caller copy of listen socket closed');

# ---------------------------------------------------------------------------
# tiny raw HTTP client

{
    package Cl;
    use Time::HiRes qw(time);

    sub new {
        my ($class, $p) = @_;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p // $port,
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $@";
        binmode $s;
        return bless { s => $s, buf => '', eof => 0, err => 0 }, $class;
    }

    sub send {
        my ($self, $data) = @_;
        my $off = 0;
        while ($off < length $data) {
            my $w = syswrite($self->{s}, $data, length($data) - $off, $off);
            die "write: $!" unless defined $w;
            $off += $w;
        }
        return $self;
    }

    # read more; returns bytes read, 0 on EOF; dies on timeout
    sub fill {
        my ($self, $timeout) = @_;
        $timeout //= 5;
        return 0 if $self->{eof};
        my $rin = '';
        vec($rin, fileno $self->{s}, 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, $timeout);
        die "read timeout\n" unless $n && $n > 0;
        my $r = sysread($self->{s}, $self->{buf}, 65536, length $self->{buf});
        if (!defined $r) {
            $self->{err} = $! + 0;
            $self->{eof} = 1;
            return 0;
        }
        $self->{eof} = 1 if $r == 0;
        return $r;
    }

    sub read_exact {
        my ($self, $n) = @_;
        while (length $self->{buf} < $n) {
            $self->fill or die "EOF after " . length($self->{buf}) . " of $n bytes\n";
        }
        return substr($self->{buf}, 0, $n, '');
    }

    sub line {
        my $self = shift;
        while ((my $i = index $self->{buf}, "\n") < 0) {
            $self->fill or die "EOF in line\n";
        }
        my $i = index $self->{buf}, "\n";
        my $l = substr($self->{buf}, 0, $i + 1, '');
        $l =~ s/\r?\n\z//;
        return $l;
    }

    sub read_all {
        my ($self, $timeout) = @_;
        1 while $self->fill($timeout);
        my $b = $self->{buf};
        $self->{buf} = '';
        return $b;
    }

    # true if the peer closes within $timeout seconds (no further data)
    sub closed_within {
        my ($self, $timeout) = @_;
        return 1 if $self->{eof};
        my $end = time + $timeout;
        while (time < $end) {
            my $rin = '';
            vec($rin, fileno $self->{s}, 1) = 1;
            my $n = select(my $rout = $rin, undef, undef, $end - time);
            next unless $n && $n > 0;
            my $r = sysread($self->{s}, $self->{buf}, 65536, length $self->{buf});
            if (!$r) { $self->{eof} = 1; $self->{err} = $! + 0 unless defined $r; return 1 }
            return 0;
        }
        return 0;
    }

    sub head {
        my $self = shift;
        while ($self->{buf} !~ /\r\n\r\n/) {
            $self->fill or die "EOF in head\n";
        }
        $self->{buf} =~ s/\A(.*?\r\n\r\n)//s;
        return $1;
    }

    # read one response (skipping, but recording, 1xx interim responses)
    sub resp {
        my ($self, %o) = @_;
        my @interim;
        while (1) {
            my $raw = $self->head;
            my ($sl, @hl) = split /\r\n/, $raw;
            my ($ver, $code, $reason) = $sl =~ m{^(HTTP/\d\.\d) (\d{3}) ?(.*)$}
                or die "bad status line '$sl'\n";
            my %h;
            for (@hl) {
                my ($n, $v) = /^([^:]+):\s*(.*)$/ or next;
                push @{ $h{lc $n} }, $v;
            }
            my $r = Resp->new(version => $ver, code => $code, reason => $reason,
                              status_line => $sl, raw_head => $raw, h => \%h,
                              body => '', raw_body => '', interim => \@interim);
            if ($code < 200 && $code != 101) {
                push @interim, $r;
                next;
            }
            return $r if $o{head} || $code == 204 || $code == 304;
            if (($r->h('transfer-encoding') // '') =~ /chunked/i) {
                my @tr;
                while (1) {
                    my $l = $self->line;
                    $r->{raw_body} .= "$l\r\n";
                    my ($hex) = $l =~ /^([0-9a-fA-F]+)/ or die "bad chunk line '$l'\n";
                    my $n = hex $hex;
                    if (!$n) {
                        while ((my $t = $self->line) ne '') {
                            push @tr, $t;
                            $r->{raw_body} .= "$t\r\n";
                        }
                        $r->{raw_body} .= "\r\n";
                        last;
                    }
                    my $d = $self->read_exact($n);
                    $r->{body} .= $d;
                    $r->{raw_body} .= $d;
                    $self->line eq '' or die "missing CRLF after chunk\n";
                    $r->{raw_body} .= "\r\n";
                }
                $r->{trailers} = \@tr;
            }
            elsif (defined(my $cl = $r->h('content-length'))) {
                $r->{body} = $r->{raw_body} = $self->read_exact($cl);
            }
            else {
                $r->{body} = $r->{raw_body} = $self->read_all;
            }
            return $r;
        }
    }

    sub req {
        my ($self, $method, $uri, %o) = @_;
        my $hdrs = $o{headers} // '';
        my $body = $o{body} // '';
        my $ver  = $o{version} // 'HTTP/1.1';
        my $cl   = length($body) || $method eq 'POST' ? "Content-Length: " . length($body) . "\r\n" : '';
        $self->send("$method $uri $ver\r\nHost: 127.0.0.1\r\n$cl$hdrs\r\n$body");
        return $self->resp(head => $method eq 'HEAD');
    }

    package Resp;
    sub new { my $c = shift; bless {@_}, $c }
    sub h {
        my ($self, $n) = @_;
        my $v = $self->{h}{lc $n} or return undef;
        return join ', ', @$v;
    }
    sub hs { my ($self, $n) = @_; @{ $self->{h}{lc $n} || [] } }
}

sub get {
    my ($uri, %o) = @_;
    my $c = Cl->new;
    my $r = $c->req($o{method} // 'GET', $uri, %o);
    return wantarray ? ($r, $c) : $r;
}

sub log_lines {
    open my $fh, '<', $log or return ();
    my @l = <$fh>;
    chomp @l;
    return @l;
}

# ---------------------------------------------------------------------------
# basics, ids, keep-alive

my $c1 = Cl->new;
my $r1 = $c1->req(GET => '/health');
is($r1->{status_line}, 'HTTP/1.1 200 OK', '/health status line');
is($r1->{body}, "ok\n", '/health body');
is($r1->h('X-Origin-Port'), $port, 'X-Origin-Port');
is($r1->h('X-Req-Seq'), 1, 'first request seq 1');
my $cid1 = $r1->h('X-Conn-Id');
like($cid1, qr/^\d+$/, 'X-Conn-Id numeric');
is($r1->h('Content-Length'), 3, 'Content-Length');
like($r1->h('Date'), qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/, 'Date header');
ok(!defined $r1->h('Connection'), 'no Connection header on keep-alive');

my $r2 = $c1->req(GET => '/length?size=5');
is($r2->h('X-Conn-Id'), $cid1, 'keep-alive: same X-Conn-Id on second request');
is($r2->h('X-Req-Seq'), 2, 'keep-alive: seq 2');
is($r2->{body}, '01234', '/length body');

my $r3 = get('/health');
is($r3->h('X-Conn-Id'), $cid1 + 1, 'new connection gets next conn id');
is($r3->h('X-Req-Seq'), 1, 'new connection seq restarts at 1');

# pipelining: two requests in one write
{
    my $c = Cl->new;
    $c->send("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /length?size=3 HTTP/1.1\r\nHost: x\r\n\r\n");
    my $a = $c->resp;
    my $b = $c->resp;
    is($a->{body}, "ok\n", 'pipelined 1');
    is($b->{body}, "012", 'pipelined 2');
    is($b->h('X-Req-Seq'), 2, 'pipelined seq 2');
}

# Connection: close from client
{
    my ($r, $c) = get('/health', headers => "Connection: close\r\n");
    is($r->h('Connection'), 'close', 'Connection: close echoed');
    ok($c->closed_within(1), 'server closes after Connection: close');
}

# HTTP/1.0 without and with keep-alive
{
    my ($r, $c) = get('/health', version => 'HTTP/1.0');
    is($r->h('Connection'), 'close', 'HTTP/1.0 request: Connection: close');
    ok($c->closed_within(1), 'HTTP/1.0 request: closed');

    ($r, $c) = get('/health', version => 'HTTP/1.0', headers => "Connection: keep-alive\r\n");
    is($r->h('Connection'), 'keep-alive', 'HTTP/1.0 keep-alive acknowledged');
    my $r2 = $c->req(GET => '/health', version => 'HTTP/1.0', headers => "Connection: keep-alive\r\n");
    is($r2->h('X-Req-Seq'), 2, 'HTTP/1.0 keep-alive connection reused');
}

# ---------------------------------------------------------------------------
# /echo and request bodies

{
    my $c = Cl->new;
    my $head = "POST /echo/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Weird:   spaced  \r\nContent-Length: 11\r\n\r\n";
    $c->send($head . "hello world");
    my $r = $c->resp;
    is($r->{code}, 200, '/echo 200');
    is($r->h('Content-Type'), 'text/plain', '/echo content type');
    is($r->{body}, $head . "\n--body--\nhello world", '/echo body = raw head + marker + body');

    # chunked request with extensions and trailers
    my $head2 = "PUT /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    $c->send($head2 . "5;ext=1\r\nhello\r\n1;a=b;c=\"d\"\r\n \r\n5\r\nworld\r\n0;last=1\r\nX-T: 1\r\nX-U: 2\r\n\r\n");
    $r = $c->resp;
    is($r->{body}, $head2 . "\n--body--\nhello world", '/echo decodes chunked request body');
    is($r->h('X-Req-Seq'), 2, 'chunked request on same connection');

    # HEAD /echo
    $r = $c->req(HEAD => '/echo');
    is($r->{body}, '', 'HEAD /echo: no body');
    ok($r->h('Content-Length') > 0, 'HEAD /echo: Content-Length present');
    my $r2 = $c->req(GET => '/health');
    is($r2->{body}, "ok\n", 'connection fine after HEAD');
}

# ---------------------------------------------------------------------------
# /status, /headers

{
    my $c = Cl->new;
    my $r = $c->req(GET => '/status/404?h=X-A:b%20c&h=X-B:%3Bd');
    is($r->{status_line}, 'HTTP/1.1 404 Not Found', '/status/404 line');
    is($r->{body}, "status 404\n", '/status/404 body');
    is($r->h('X-A'), 'b c', '?h= header url-decoded');
    is($r->h('X-B'), ';d', '?h= second header');

    $r = $c->req(GET => '/status/503');
    is($r->{status_line}, 'HTTP/1.1 503 Service Unavailable', '/status/503');

    $r = $c->req(GET => '/status/299');
    is($r->{code}, 299, '/status/299 unknown code');
    like($r->{reason}, qr/\S/, 'unknown code has a reason phrase');

    $r = $c->req(GET => '/status/204');
    is($r->{code}, 204, '/status/204');
    ok(!defined $r->h('Content-Length'), '204 without Content-Length');

    $r = $c->req(GET => '/status/304?h=ETag:%22x%22');
    is($r->{code}, 304, '/status/304');
    is($r->h('ETag'), '"x"', '304 with ETag from h');

    $r = $c->req(HEAD => '/status/200');
    is($r->h('Content-Length'), 11, 'HEAD /status/200 has CL of would-be body');

    $r = $c->req(GET => '/health');
    is($r->{body}, "ok\n", 'connection intact after 204/304/HEAD (no stray body bytes)');
    is($r->h('X-Req-Seq'), 7, 'seq 7 on that connection');

    $r = $c->req(GET => '/headers?h=Location:/elsewhere&h=Set-Cookie:a=1&h=Set-Cookie:b=2;%20Path=/'
                       . '&h=Cache-Control:max-age=60,%20public&h=Connection:X-Foo&h=X-Foo:bar'
                       . '&h=Keep-Alive:timeout=5&h=Upgrade:h2c&h=Trailer:X-T&h=Content-Type:text/html');
    is($r->{body}, "ok\n", '/headers body');
    is($r->h('Location'), '/elsewhere', 'Location');
    is_deeply([$r->hs('Set-Cookie')], ['a=1', 'b=2; Path=/'], 'two Set-Cookie');
    is($r->h('Cache-Control'), 'max-age=60, public', 'Cache-Control');
    is($r->h('Connection'), 'X-Foo', 'Connection: X-Foo');
    is($r->h('X-Foo'), 'bar', 'X-Foo');
    is($r->h('Keep-Alive'), 'timeout=5', 'Keep-Alive');
    is($r->h('Upgrade'), 'h2c', 'Upgrade');
    is($r->h('Trailer'), 'X-T', 'Trailer');
    is($r->h('Content-Type'), 'text/html', 'user Content-Type replaces default');

    $r = $c->req(GET => '/health');
    is($r->h('X-Req-Seq'), 9, 'Connection: X-Foo does not close');

    $r = $c->req(GET => '/health?close=1');
    is($r->h('Connection'), 'close', '?close=1');
    ok($c->closed_within(1), '?close=1 closes');
}

# ---------------------------------------------------------------------------
# /chunked

{
    my $c = Cl->new;
    my $r = $c->req(GET => '/chunked?n=3&size=10');
    is($r->h('Transfer-Encoding'), 'chunked', '/chunked TE');
    ok(!defined $r->h('Content-Length'), '/chunked no CL');
    is($r->{body}, 'abcdefghijklmnopqrstuvwxyzabcd', '/chunked body cycles a..z');
    is($r->{raw_body}, "a\r\nabcdefghij\r\na\r\nklmnopqrst\r\na\r\nuvwxyzabcd\r\n0\r\n\r\n", '/chunked raw framing');

    $r = $c->req(GET => '/chunked?n=2&size=3&ext=1&trailer=1');
    is($r->{raw_body}, "3;foo=bar\r\nabc\r\n3;foo=bar\r\ndef\r\n0;foo=bar\r\nX-Trailer: yes\r\n\r\n",
       '/chunked ext+trailer raw');
    is($r->h('Trailer'), 'X-Trailer', 'Trailer announced');
    is_deeply($r->{trailers}, ['X-Trailer: yes'], 'trailer received');

    $r = $c->req(GET => '/chunked?n=40&size=2000');
    is(length $r->{body}, 80000, 'big chunked body');

    $r = $c->req(HEAD => '/chunked');
    is($r->h('Transfer-Encoding'), 'chunked', 'HEAD /chunked');
    $r = $c->req(GET => '/health');
    is($r->{body}, "ok\n", 'connection intact after HEAD /chunked');
}

# ---------------------------------------------------------------------------
# /length /close-delimited /http10

{
    my $c = Cl->new;
    my $r = $c->req(GET => '/length?size=25');
    is($r->h('Content-Length'), 25, '/length CL');
    is($r->{body}, '0123456789012345678901234', '/length body');
    $r = $c->req(HEAD => '/length?size=25');
    is($r->h('Content-Length'), 25, 'HEAD /length CL');
    $r = $c->req(GET => '/length?size=200000');
    is(length $r->{body}, 200000, 'big /length');
    is(substr($r->{body}, 199990), '0123456789', 'big /length pattern');
    $r = $c->req(GET => '/length?size=0');
    is($r->{body}, '', '/length?size=0');
    is($r->h('X-Req-Seq'), 4, 'all on one connection');

    ($r, $c) = get('/close-delimited?size=100');
    ok(!defined $r->h('Content-Length') && !defined $r->h('Transfer-Encoding'),
       '/close-delimited: no CL/TE');
    is($r->h('Connection'), 'close', '/close-delimited: Connection: close');
    is(length $r->{body}, 100, '/close-delimited: 100 bytes until EOF');

    ($r, $c) = get('/http10?size=10');
    is($r->{status_line}, 'HTTP/1.0 200 OK', '/http10 status line');
    is($r->h('Content-Length'), 10, '/http10 CL');
    is($r->{body}, '0123456789', '/http10 body');
    ok($c->closed_within(1), '/http10 closes');
}

# ---------------------------------------------------------------------------
# slow endpoints (and concurrency)

{
    my $slow = Cl->new;
    my $t0 = time;
    $slow->send("GET /slow-head?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n");
    my $r = get('/health');
    my $t1 = time - $t0;
    is($r->{body}, "ok\n", 'other connection served while /slow-head pending');
    ok($t1 < 0.3, sprintf('... quickly (%.3fs)', $t1));
    $r = $slow->resp;
    my $t2 = time - $t0;
    is($r->{body}, "slow\n", '/slow-head body');
    ok($t2 >= 0.39, sprintf('/slow-head delayed (%.3fs)', $t2));

    my $c = Cl->new;
    $t0 = time;
    $c->send("GET /slow-body?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    my $h = $c->head;
    like($h, qr/Content-Length: 10\r\n/, '/slow-body CL 10');
    my $first = $c->read_exact(5);
    my $tf = time - $t0;
    is($first, '01234', '/slow-body first half');
    ok($tf < 0.25, sprintf('first half immediately (%.3fs)', $tf));
    my $second = $c->read_exact(5);
    my $ts = time - $t0;
    is($second, '56789', '/slow-body second half');
    ok($ts >= 0.29, sprintf('second half delayed (%.3fs)', $ts));

    $t0 = time;
    $r = get('/sleep-then-ok?ms=200');
    is($r->{body}, "ok\n", '/sleep-then-ok');
    ok(time - $t0 >= 0.19, '/sleep-then-ok delayed');
}

# ---------------------------------------------------------------------------
# /ctr size= drip= dripms= cut= chunked=

{
    my $t0 = time;
    my $r = get('/ctr/drip1?size=1000&drip=4&dripms=100');
    is(length $r->{body}, 1000, '/ctr size=1000: 1000 bytes');
    like($r->{body}, qr/^drip1 1\nabcdefghij/, '/ctr size=: name, count, a..z');
    ok(time - $t0 >= 0.29, '/ctr drip=4 dripms=100: three gaps');
    $r = get('/ctr/drip2?size=1000&drip=4&chunked=1');
    is($r->h('Transfer-Encoding'), 'chunked', '/ctr chunked=1');
    is(length $r->{body}, 1000, '/ctr chunked=1: 1000 bytes');
    my $c = Cl->new;
    $c->send("GET /ctr/drip3?size=1000&drip=4&cut=500 HTTP/1.1\r\nHost: x\r\n\r\n");
    like($c->head, qr/Content-Length: 1000\r\n/, '/ctr cut=500 announces 1000');
    is(length $c->read_all, 500, '/ctr cut=500 sends 500 then EOF');
}

# ---------------------------------------------------------------------------
# truncation and garbage

{
    my $c = Cl->new;
    $c->send("GET /truncate-length HTTP/1.1\r\nHost: x\r\n\r\n");
    my $h = $c->head;
    like($h, qr/Content-Length: 1000\r\n/, '/truncate-length announces 1000');
    my $rest = $c->read_all;
    is(length $rest, 100, '/truncate-length sends 100 then EOF');

    $c = Cl->new;
    $c->send("GET /truncate-chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    $h = $c->head;
    like($h, qr/Transfer-Encoding: chunked\r\n/, '/truncate-chunked TE');
    $rest = $c->read_all;
    is($rest, "5\r\nabcde\r\n5\r\nfghij\r\n", '/truncate-chunked: two chunks then EOF');

    $c = Cl->new;
    $c->send("GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n");
    is($c->read_all, "this is not http\r\n\r\n", '/garbage exact bytes then EOF');

    $c = Cl->new;
    $c->send("GET /bad-status HTTP/1.1\r\nHost: x\r\n\r\n");
    like($c->read_all, qr/\AHTTP\/1\.1 2000 Whatever\r\n.*\r\n\r\nok\n\z/s, '/bad-status');

    $c = Cl->new;
    $c->send("GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n");
    my $all = $c->read_all;
    like($all, qr/\AHTTP\/1\.1 200 OK\r\n/, '/bad-header status');
    like($all, qr/\r\nBadHeaderWithoutColon\r\n/, '/bad-header colon-less line');

    $c = Cl->new;
    $c->send("GET /bad-length HTTP/1.1\r\nHost: x\r\n\r\n");
    like($c->read_all, qr/\r\nContent-Length: 12abc\r\n/, '/bad-length');

    $c = Cl->new;
    $c->send("GET /two-lengths HTTP/1.1\r\nHost: x\r\n\r\n");
    $all = $c->read_all;
    like($all, qr/\r\nContent-Length: 5\r\nContent-Length: 10\r\n/, '/two-lengths');
    like($all, qr/\r\n\r\n0123456789\z/, '/two-lengths body 10 bytes');

    $c = Cl->new;
    $c->send("GET /te-and-cl HTTP/1.1\r\nHost: x\r\n\r\n");
    $h = $c->head;
    like($h, qr/\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n/, '/te-and-cl both headers');
    is($c->read_exact(15), "5\r\nhello\r\n0\r\n\r\n", '/te-and-cl chunked body');
    my $r = $c->req(GET => '/health');
    is($r->h('X-Req-Seq'), 2, '/te-and-cl keeps the connection');
}

# ---------------------------------------------------------------------------
# big heads, interim, 204/304, close/drop/reset

{
    my $c = Cl->new;
    my $r = $c->req(GET => '/huge-header?kb=8');
    is(length $r->h('X-Huge'), 8192, '/huge-header?kb=8');
    $r = $c->req(GET => '/huge-header');
    is(length $r->h('X-Huge'), 102400, '/huge-header default 100 KiB');
    $r = $c->req(GET => '/many-headers?n=50');
    is(scalar(grep { /^x-many-/ } keys %{ $r->{h} }), 50, '/many-headers?n=50');
    $r = $c->req(GET => '/many-headers');
    is(scalar(grep { /^x-many-/ } keys %{ $r->{h} }), 1000, '/many-headers default 1000');
    is($r->{body}, "ok\n", '/many-headers body');

    $r = $c->req(GET => '/interim');
    is(scalar @{ $r->{interim} }, 2, '/interim: two interim responses');
    is($r->{interim}[0]{raw_head}, "HTTP/1.1 100 Continue\r\n\r\n", '/interim 100');
    is($r->{interim}[1]{raw_head}, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", '/interim 103');
    is($r->{code}, 200, '/interim final 200');
    is($r->{body}, "final\n", '/interim final body');

    $r = $c->req(GET => '/no-content');
    is($r->{code}, 204, '/no-content');
    ok(!defined $r->h('Content-Length') && !defined $r->h('Content-Type'), '204 without CL/CT');
    $r = $c->req(GET => '/not-modified');
    is($r->{code}, 304, '/not-modified');
    is($r->h('ETag'), '"rc-etag-1"', '/not-modified ETag');
    $r = $c->req(GET => '/health');
    is($r->{body}, "ok\n", 'keep-alive after 204/304');
    is($r->h('X-Req-Seq'), 8, '... same connection');

    ($r, $c) = get('/close-after');
    is($r->{body}, "bye\n", '/close-after body');
    is($r->h('Connection'), 'close', '/close-after Connection: close');
    ok($c->closed_within(1), '/close-after closes');

    ($r, $c) = get('/drop-after');
    is($r->{body}, "kept\n", '/drop-after body');
    ok(!defined $r->h('Connection'), '/drop-after: no Connection header');
    ok(!$c->closed_within(0.02), '/drop-after: still open right after the response');
    my $t0 = time;
    ok($c->closed_within(1), '/drop-after: closed silently');
    ok(time - $t0 < 0.5, '/drop-after: closed ~50ms later');

    # reset
    $c = Cl->new;
    $c->send("GET /reset HTTP/1.1\r\nHost: x\r\n\r\n");
    my $got = eval { $c->read_all };
    is($got // '', '', '/reset: no response bytes');
    is($c->{err}, ECONNRESET, '/reset: connection reset (RST)');

    # 404
    $r = get('/nope');
    is($r->{code}, 404, 'unknown path -> 404');
    is($r->{body}, "not found\n", '404 body');
    $r = get('/status');
    is($r->{code}, 404, '/status without code is 404');
}

# ---------------------------------------------------------------------------
# Expect: 100-continue

{
    my $c = Cl->new;
    my $head = "POST /expect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    $c->send($head);
    my $h = $c->head;
    is($h, "HTTP/1.1 100 Continue\r\n\r\n", '/expect: 100 Continue before body');
    $c->send('data');
    my $r = $c->resp;
    is($r->{body}, $head . "\n--body--\ndata", '/expect then echoes');

    # without Expect: plain echo
    $r = $c->req(POST => '/expect', body => 'xy');
    is(scalar @{ $r->{interim} }, 0, '/expect without Expect: no 100');
    like($r->{body}, qr/\n--body--\nxy\z/, '/expect without Expect echoes');
}

# ---------------------------------------------------------------------------
# log and /count

{
    my @l = log_lines();
    ok(@l > 20, 'log has lines');
    ok(!(grep { !/^conn=\d+ seq=\d+ method=\S+ uri=\S+ bodylen=\d+$/ } @l), 'log line format');
    ok((grep { $_ eq 'conn=' . ($cid1) . ' seq=2 method=GET uri=/length?size=5 bodylen=0' } @l),
       'log has the keep-alive request');

    my $r = get('/reset-log');
    is($r->{body}, "ok\n", '/reset-log');
    is(-s $log, 0, 'log truncated');
    $r = get('/count');
    is($r->{body}, '0', '/count after reset is 0 (not logged itself)');
    my $c = Cl->new;
    $c->req(GET => '/health');
    $c->req(POST => '/echo?a=b', body => 'abcdef');
    $c->req(GET => '/status/404');
    $r = get('/count');
    is($r->{body}, '3', '/count counts 3');
    @l = log_lines();
    like($l[1], qr/^conn=\d+ seq=2 method=POST uri=\/echo\?a=b bodylen=6$/, 'log line for POST');
    is(scalar(log_lines()), 3, 'count/reset-log not logged');
}

# ---------------------------------------------------------------------------
# bad requests

{
    my $c = Cl->new;
    $c->send("THIS IS NOT A REQUEST\r\n\r\n");
    my $r = $c->resp;
    is($r->{code}, 400, 'garbage request -> 400');
    ok($c->closed_within(1), '... and close');

    $c = Cl->new;
    $c->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n");
    $r = $c->resp;
    is($r->{code}, 400, 'bad request Content-Length -> 400');

    # absolute-form target
    $r = get("http://127.0.0.1:$port/health");
    is($r->{body}, "ok\n", 'absolute-form request target');
}

# ---------------------------------------------------------------------------
# SIGTERM kills connection children; server exits with its parent

{
    my $c = Cl->new;              # idle kept-alive connection child
    $c->req(GET => '/health');
    my $slow = Cl->new;
    $slow->send("GET /slow-head?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
    select(undef, undef, undef, 0.1);
    my $t0 = time;
    ok(RcOrigin::stop($pid), 'SIGTERM: server exited');
    ok($c->closed_within(2), 'SIGTERM: idle connection child gone');
    ok($slow->closed_within(2), 'SIGTERM: busy connection child gone');
    ok(time - $t0 < 2, 'SIGTERM: fast');
    my $refused = !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                         Proto => 'tcp', Timeout => 1);
    ok($refused, 'SIGTERM: port no longer accepting');
}

{
    pipe(my $rd, my $wr) or die;
    my $mid = fork // die;
    if (!$mid) {
        close $rd;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp', Listen => 16, ReuseAddr => 1) or POSIX::_exit(1);
        my $p = $s->sockport;
        my $sp = RcOrigin::spawn(listen_sock => $s, log => "$dir/o2.log");
        syswrite $wr, "$p $sp\n";
        close $wr;
        select(undef, undef, undef, 0.3);
        POSIX::_exit(0);          # intermediate parent exits
    }
    close $wr;
    my $line = <$rd>;
    my ($p2, $sp2) = split ' ', $line;
    my $c = Cl->new($p2);
    my $r = $c->req(GET => '/health');
    is($r->{body}, "ok\n", 'second server answers');
    waitpid($mid, 0);
    ok($c->closed_within(2), 'parent exit: connection child gone');
    my $gone = 0;
    my $end = time + 2;
    while (time < $end) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p2,
                                      Proto => 'tcp', Timeout => 1);
        if (!$s) { $gone = 1; last }
        close $s;
        select(undef, undef, undef, 0.05);
    }
    ok($gone, 'parent exit: server gone (connection refused)');
}

done_testing();
