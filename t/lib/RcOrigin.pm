package RcOrigin;

# RcOrigin - a small, controllable, sometimes deliberately misbehaving
# HTTP/1.1 origin server for the mod_revcache Apache::Test suite.
#
#   use lib 't/lib';
#   use RcOrigin;
#   my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
#                                    Listen => 128, ReuseAddr => 1) or die;
#   my $port = $sock->sockport;
#   my $pid  = RcOrigin::spawn(listen_sock => $sock, log => "/tmp/origin.log");
#   ...
#   RcOrigin::stop($pid);
#
# spawn() forks a server process which accepts on the given (already bound
# and listening) socket and serves every connection in its own forked child.
# The caller's copy of the socket is closed after the fork (pass
# keep_sock => 1 to keep it), so once the server is gone connections are
# refused.  The server exits when the process that called spawn() exits (it
# polls getppid), and on SIGTERM/SIGINT it kills its connection children.
# Connection children exit when the server goes away.
#
# Other spawn() options:
#   truncate_log => 0   do not truncate the log file at start (default: do)
#   quiet        => 0   warn about internal errors on STDERR (default: quiet)
#
# Only core Perl modules are used.  All forked processes leave through
# POSIX::_exit so the caller's END blocks / destructors never run twice.
#
# See the endpoint list in the comment above %ROUTES below.

use strict;
use warnings;

use Carp qw(croak);
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER IPPROTO_TCP TCP_NODELAY SHUT_WR);
use POSIX qw(WNOHANG EINTR EAGAIN EWOULDBLOCK SIGCHLD SIG_BLOCK SIG_UNBLOCK);
use Fcntl qw(:flock);
use Time::HiRes qw(time);

our $VERSION = '1.00';

my %REASON = (
    100 => 'Continue',            101 => 'Switching Protocols',
    102 => 'Processing',          103 => 'Early Hints',
    200 => 'OK',                  201 => 'Created',
    202 => 'Accepted',            203 => 'Non-Authoritative Information',
    204 => 'No Content',          205 => 'Reset Content',
    206 => 'Partial Content',     207 => 'Multi-Status',
    226 => 'IM Used',
    300 => 'Multiple Choices',    301 => 'Moved Permanently',
    302 => 'Found',               303 => 'See Other',
    304 => 'Not Modified',        305 => 'Use Proxy',
    307 => 'Temporary Redirect',  308 => 'Permanent Redirect',
    400 => 'Bad Request',         401 => 'Unauthorized',
    402 => 'Payment Required',    403 => 'Forbidden',
    404 => 'Not Found',           405 => 'Method Not Allowed',
    406 => 'Not Acceptable',      407 => 'Proxy Authentication Required',
    408 => 'Request Timeout',     409 => 'Conflict',
    410 => 'Gone',                411 => 'Length Required',
    412 => 'Precondition Failed', 413 => 'Content Too Large',
    414 => 'URI Too Long',        415 => 'Unsupported Media Type',
    416 => 'Range Not Satisfiable', 417 => 'Expectation Failed',
    421 => 'Misdirected Request', 422 => 'Unprocessable Content',
    425 => 'Too Early',           426 => 'Upgrade Required',
    428 => 'Precondition Required', 429 => 'Too Many Requests',
    431 => 'Request Header Fields Too Large',
    451 => 'Unavailable For Legal Reasons',
    500 => 'Internal Server Error', 501 => 'Not Implemented',
    502 => 'Bad Gateway',         503 => 'Service Unavailable',
    504 => 'Gateway Timeout',     505 => 'HTTP Version Not Supported',
    507 => 'Insufficient Storage', 511 => 'Network Authentication Required',
);

my $MAX_HEAD     = 1024 * 1024;    # request head limit
my $IDLE_TIMEOUT = 300;            # seconds a kept-alive connection may idle
my $READ_TIMEOUT = 60;             # seconds for the rest of a started request
my $LINGER_SECS  = 2;              # lingering close: drain input this long

# ---------------------------------------------------------------------------
# public API

sub spawn {
    my %o = @_;
    my $ls  = $o{listen_sock} or croak "RcOrigin::spawn: listen_sock required";
    my $log = $o{log}         or croak "RcOrigin::spawn: log required";
    defined fileno($ls)       or croak "RcOrigin::spawn: listen_sock is not open";

    if (!defined $o{truncate_log} || $o{truncate_log}) {
        open my $fh, '>', $log or croak "RcOrigin::spawn: cannot write $log: $!";
        close $fh;
    }
    else {
        open my $fh, '>>', $log or croak "RcOrigin::spawn: cannot write $log: $!";
        close $fh;
    }

    my $caller = $$;
    my $pid = fork;
    croak "RcOrigin::spawn: fork failed: $!" unless defined $pid;
    if ($pid) {
        close $ls unless $o{keep_sock};
        return $pid;
    }

    # server process
    my $rc = 0;
    eval {
        local $SIG{__DIE__};
        _server($ls, $log, $caller, \%o);
        1;
    } or do {
        $rc = 1;
        warn "RcOrigin server: $@" unless $o{quiet} // 1;
    };
    POSIX::_exit($rc);
}

# Terminate a server started by spawn() and reap it.
sub stop {
    my ($pid, $timeout) = @_;
    return unless $pid;
    $timeout //= 5;
    kill 'TERM', $pid;
    my $end = time + $timeout;
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        return 1 if $r == $pid || $r == -1;
        select(undef, undef, undef, 0.02);
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return 0;
}

# ---------------------------------------------------------------------------
# server (acceptor) process

sub _server {
    my ($ls, $log, $caller, $o) = @_;
    my $port = $ls->sockport;
    $0 = "rc_origin [port $port]";

    my %kids;
    my $conn_id = 0;
    my $stop    = 0;

    local $SIG{CHLD} = sub {
        while ((my $k = waitpid(-1, WNOHANG)) > 0) { delete $kids{$k} }
    };
    local $SIG{TERM} = sub { $stop = 1 };
    local $SIG{INT}  = sub { $stop = 1 };
    local $SIG{HUP}  = sub { $stop = 1 };
    my $pause = 0;
    local $SIG{USR1} = sub { $pause = 1 };    # sent by /pause
    local $SIG{PIPE} = 'IGNORE';
    local $SIG{ALRM} = 'DEFAULT';
    alarm 0;

    $ls->blocking(0);
    my $fd = fileno $ls;
    my $chld_set = POSIX::SigSet->new(SIGCHLD);

    while (!$stop) {
        last if getppid() != $caller;
        if ($pause) {
            # /pause?s=N: as if stopped for N seconds (connections
            # refused, open ones closed), then listen again.
            $pause = 0;
            my $secs = 1;
            if (open my $pf, '<', "$log.pause") {
                $secs = (<$pf> // 1) + 0;
                close $pf;
            }
            my $addr = $ls->sockhost;
            close $ls;
            kill 'TERM', keys %kids if %kids;
            my $until = time + $secs;
            while (time < $until && !$stop && getppid() == $caller) {
                select(undef, undef, undef, 0.05);
            }
            for (1 .. 100) {
                $ls = IO::Socket::INET->new(LocalAddr => $addr,
                    LocalPort => $port, Proto => 'tcp', Listen => 128,
                    ReuseAddr => 1) and last;
                select(undef, undef, undef, 0.05);
            }
            last unless $ls;
            $ls->blocking(0);
            $fd = fileno $ls;
            next;
        }
        my $rin = '';
        vec($rin, $fd, 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, 0.2);
        next unless defined $n && $n > 0;
        my $c = $ls->accept or next;
        $conn_id++;

        POSIX::sigprocmask(SIG_BLOCK, $chld_set);
        my $pid = fork;
        if (!defined $pid) {
            POSIX::sigprocmask(SIG_UNBLOCK, $chld_set);
            close $c;
            next;
        }
        if ($pid == 0) {
            $SIG{CHLD} = 'DEFAULT';
            $SIG{TERM} = 'DEFAULT';
            $SIG{INT}  = 'DEFAULT';
            $SIG{HUP}  = 'DEFAULT';
            POSIX::sigprocmask(SIG_UNBLOCK, $chld_set);
            close $ls;
            my $server = getppid();
            eval {
                _connection($c, {
                    id => $conn_id, port => $port, log => $log,
                    server_pid => $server,
                });
                1;
            } or do {
                my $e = $@;
                warn "RcOrigin conn $conn_id: $e"
                    unless ($o->{quiet} // 1) || $e =~ /^RCO_(?:GONE|EOF)/;
            };
            POSIX::_exit(0);
        }
        $kids{$pid} = 1;
        POSIX::sigprocmask(SIG_UNBLOCK, $chld_set);
        close $c;
    }

    close $ls;
    kill 'TERM', keys %kids if %kids;
    my $end = time + 2;
    while (%kids && time < $end) {
        select(undef, undef, undef, 0.02);
        while ((my $k = waitpid(-1, WNOHANG)) > 0) { delete $kids{$k} }
    }
    if (%kids) {
        kill 'KILL', keys %kids;
        while ((my $k = waitpid(-1, 0)) > 0) { delete $kids{$k} }
    }
    return;
}

# ---------------------------------------------------------------------------
# connection child

sub _connection {
    my ($sock, $ctx) = @_;
    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(1);
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $sock;

    my $c = {
        %$ctx,
        sock    => $sock,
        buf     => '',
        seq     => 0,
        closing => '',
    };

    while (1) {
        my $r = _read_request($c);
        last unless $r;
        _handle($c, $r);
        last if $c->{closing};
    }
    _close($c, $c->{closing} || 'plain');
}

sub _check_parent {
    my $c = shift;
    die "RCO_GONE server went away\n" if getppid() != $c->{server_pid};
}

# read more bytes into $c->{buf}; returns count, 0 on EOF, undef on
# error or timeout
sub _fill {
    my ($c, $timeout) = @_;
    my $deadline = time + $timeout;
    my $fd = fileno $c->{sock};
    while (1) {
        my $rin = '';
        vec($rin, $fd, 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, 0.5);
        if (defined $n && $n > 0) {
            my $r = sysread($c->{sock}, $c->{buf}, 65536, length $c->{buf});
            if (!defined $r) {
                next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
                return undef;
            }
            return $r;
        }
        _check_parent($c);
        return undef if time > $deadline;
    }
}

sub _getline {
    my ($c, $max) = @_;
    $max //= 65536;
    while (1) {
        my $i = index($c->{buf}, "\n");
        if ($i >= 0) {
            my $l = substr($c->{buf}, 0, $i + 1, '');
            $l =~ s/\r?\n\z//;
            return $l;
        }
        die "RCO_BAD line too long\n" if length $c->{buf} > $max;
        _fill($c, $READ_TIMEOUT) or die "RCO_EOF in line\n";
    }
}

sub _read_exact {
    my ($c, $n) = @_;
    while (length $c->{buf} < $n) {
        _fill($c, $READ_TIMEOUT) or die "RCO_EOF in body\n";
    }
    return substr($c->{buf}, 0, $n, '');
}

sub _write {
    my ($c, $data) = @_;
    my $off = 0;
    my $len = length $data;
    while ($off < $len) {
        my $w = syswrite($c->{sock}, $data, $len - $off, $off);
        if (!defined $w) {
            next if $! == EINTR || $! == EAGAIN;
            die "RCO_GONE write: $!\n";
        }
        $off += $w;
    }
    return;
}

sub _msleep {
    my ($c, $ms) = @_;
    my $end = time + $ms / 1000;
    while ((my $left = $end - time) > 0) {
        select(undef, undef, undef, $left > 0.2 ? 0.2 : $left);
        _check_parent($c);
    }
}

sub _close {
    my ($c, $mode) = @_;
    my $s = $c->{sock};
    if ($mode eq 'rst') {
        setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    }
    elsif ($mode eq 'linger') {
        # graceful: send FIN, drain what the client still sends so that
        # unread input does not turn our close into an RST
        shutdown($s, SHUT_WR);
        my $end = time + $LINGER_SECS;
        my $fd = fileno $s;
        while (time < $end) {
            my $rin = '';
            vec($rin, $fd, 1) = 1;
            my $n = select(my $rout = $rin, undef, undef, 0.1);
            next unless defined $n && $n > 0;
            my $junk;
            my $r = sysread($s, $junk, 65536);
            last if !$r;    # EOF or error
        }
    }
    close $s;
}

# ---------------------------------------------------------------------------
# request parsing

sub _read_request {
    my $c = shift;

    # wait for a request head (ignore leading empty lines, RFC 9112 2.2)
    my $first = 1;
    my $end;
    while (1) {
        $c->{buf} =~ s/\A(?:\r?\n)+//;
        if ($c->{buf} =~ /\r?\n\r?\n/) {
            $end = $+[0];
            last;
        }
        if (length $c->{buf} > $MAX_HEAD) {
            $c->{seq}++;
            my $r = { method => 'GET', version => 'HTTP/1.1', ka10 => 0 };
            _respond($c, $r, code => 431, body => "request head too large\n",
                     close => 1, no_user => 1);
            return undef;
        }
        my $t = (length $c->{buf}) ? $READ_TIMEOUT : $IDLE_TIMEOUT;
        my $n = _fill($c, $t);
        return undef unless $n;    # EOF, error, timeout
    }

    my $raw = substr($c->{buf}, 0, $end, '');
    $c->{seq}++;
    my @lines = split /\r?\n/, $raw;
    my $rl = shift @lines;
    my %r = (raw_head => $raw, method => 'GET', version => 'HTTP/1.1',
             ka10 => 0, headers => {}, header_list => [], body => '');

    my $bad = sub {
        my $why = shift;
        _respond($c, \%r, code => 400, body => "bad request: $why\n",
                 close => 1, no_user => 1);
        return undef;
    };

    my ($m, $uri, $v) = $rl =~ m{^([!#\$%&'*+.^_`|~0-9A-Za-z-]+) +(\S+) +(HTTP/\d+\.\d+) *$}
        or return $bad->('request line');
    @r{qw(method uri version)} = ($m, $uri, $v);
    my ($maj, $min) = $v =~ m{^HTTP/(\d+)\.(\d+)$};
    if ($maj != 1) {
        _respond($c, \%r, code => 505, body => "version not supported\n",
                 close => 1, no_user => 1);
        return undef;
    }

    for my $l (@lines) {
        my ($n, $val) = $l =~ /^([^:\s]+):[ \t]*(.*?)[ \t]*$/
            or return $bad->('header line');
        push @{ $r{headers}{lc $n} }, $val;
        push @{ $r{header_list} }, [$n, $val];
    }

    my %ctok = map { lc($_) => 1 } grep { length }
        map { split /\s*,\s*/ } @{ $r{headers}{connection} || [] };
    if ($min >= 1) {
        $c->{req_close} = $ctok{close} ? 1 : 0;
    }
    else {
        if ($ctok{'keep-alive'} && !$ctok{close}) {
            $r{ka10} = 1;
            $c->{req_close} = 0;
        }
        else {
            $c->{req_close} = 1;
        }
    }

    # target -> path + query
    my $target = $uri;
    $target =~ s{^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*}{};
    $target = "/$target" unless $target =~ m{^/};
    $target =~ s/#.*//s;
    my ($path, $query) = split /\?/, $target, 2;
    $r{path}  = $path;
    $r{query} = $query;
    $r{q}     = _parse_query($query);
    $r{h}     = [ map {
                      my ($hn, $hv) = split /:/, $_->[1], 2;
                      $hv //= '';
                      $hv =~ s/^[ \t]+//;
                      [$hn, $hv]
                  } grep { $_->[0] eq 'h' && length $_->[1] } @{ $r{q} } ];
    $r{q_close} = _qflag(\%r, 'close');

    # request body framing
    my $te = join ',', @{ $r{headers}{'transfer-encoding'} || [] };
    my @cl = map { split /\s*,\s*/ } @{ $r{headers}{'content-length'} || [] };
    if (length $te) {
        my @codings = map { lc } grep { length } split /\s*,\s*/, $te;
        return $bad->('transfer-encoding') unless @codings && $codings[-1] eq 'chunked';
        $r{chunked} = 1;
        # TE + CL: obey TE, close afterwards (RFC 9112 6.1)
        $c->{req_close} = 1 if @cl;
    }
    elsif (@cl) {
        my %u = map { $_ => 1 } @cl;
        return $bad->('content-length')
            if keys(%u) != 1 || $cl[0] !~ /^\d{1,15}$/;
        $r{clen} = $cl[0] + 0;
    }

    # Expect: 100-continue -> interim response before reading the body
    my $expect = lc join ',', @{ $r{headers}{expect} || [] };
    my $wants100 = $expect =~ /\b100-continue\b/;
    my $has_body = $r{chunked} || ($r{clen} // 0) > 0;
    if ($wants100
        && (index($path, '/expect') == 0 || ($has_body && $min >= 1))) {
        _write($c, "HTTP/1.1 100 Continue\r\n\r\n");
        $r{sent100} = 1;
    }

    my $ok = eval {
        if ($r{chunked}) {
            _read_chunked($c, \%r);
        }
        elsif ($r{clen}) {
            $r{body} = _read_exact($c, $r{clen});
        }
        1;
    };
    if (!$ok) {
        die $@ if $@ =~ /^RCO_(?:GONE|EOF)/;
        return $bad->('chunked body');
    }

    return \%r;
}

sub _read_chunked {
    my ($c, $r) = @_;
    my $body = '';
    while (1) {
        my $l = _getline($c, 8192);
        my ($hex) = $l =~ /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/
            or die "RCO_BAD chunk size line\n";
        die "RCO_BAD chunk too big\n" if length($hex) > 12;
        my $n = hex $hex;
        if ($n == 0) {
            # trailer section
            my @tr;
            while (1) {
                my $t = _getline($c, 65536);
                last if $t eq '';
                push @tr, $t;
            }
            $r->{trailers} = \@tr;
            last;
        }
        $body .= _read_exact($c, $n);
        my $crlf = _getline($c, 2);
        die "RCO_BAD chunk data not followed by CRLF\n" if $crlf ne '';
    }
    $r->{body} = $body;
}

sub _unescape {
    my $s = shift;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

sub _parse_query {
    my $q = shift;
    return [] unless defined $q && length $q;
    my @p;
    for my $kv (split /&/, $q) {
        next unless length $kv;
        my ($k, $v) = split /=/, $kv, 2;
        push @p, [_unescape($k), _unescape($v // '')];
    }
    return \@p;
}

sub _qval {
    my ($r, $name) = @_;
    my $v;
    for (@{ $r->{q} || [] }) { $v = $_->[1] if $_->[0] eq $name }
    return $v;
}

sub _qnum {
    my ($r, $name, $def, $max) = @_;
    my $v = _qval($r, $name);
    return $def unless defined $v && $v =~ /^\d+$/;
    $v += 0;
    $v = $max if defined $max && $v > $max;
    return $v;
}

sub _qflag {
    my ($r, $name) = @_;
    my $v = _qval($r, $name);
    return defined $v && $v ne '' && $v ne '0' ? 1 : 0;
}

# ---------------------------------------------------------------------------
# response building

my @DAY = qw(Sun Mon Tue Wed Thu Fri Sat);
my @MON = qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec);

sub _httpdate {
    my @g = gmtime(int(shift // time));
    return sprintf '%s, %02d %s %04d %02d:%02d:%02d GMT',
        $DAY[$g[6]], $g[3], $MON[$g[4]], $g[5] + 1900, $g[2], $g[1], $g[0];
}

sub _ids {
    my ($c) = @_;
    return "X-Conn-Id: $c->{id}\r\nX-Req-Seq: $c->{seq}\r\nX-Origin-Port: $c->{port}\r\n";
}

# Build a response head.  Options:
#   code, reason, version   status line
#   length                  Content-Length value (omitted when undef)
#   extra                   [[name,value],...] generated headers
#   ctype                   Content-Type (default text/plain; none if '')
#   close                   close the connection afterwards
#   close_silent            ... but do not announce it (no Connection: close)
#   close_mode              'linger' (default), 'plain', 'rst'
#   no_user                 ignore ?h= headers
sub _head {
    my ($c, $r, %o) = @_;
    my $code    = $o{code} // 200;
    my $reason  = $o{reason} // $REASON{$code} // "Status $code";
    my $version = $o{version} // 'HTTP/1.1';
    my @user    = $o{no_user} ? () : @{ $r->{h} || [] };
    my %uh      = map { lc($_->[0]) => 1 } @user;

    my @out;
    push @out, ['Date', _httpdate()] unless $uh{date};
    my $ctype = exists $o{ctype} ? $o{ctype} : 'text/plain';
    push @out, ['Content-Type', $ctype]
        if defined $ctype && length $ctype && !$uh{'content-type'};
    push @out, ['Content-Length', $o{length}]
        if defined $o{length} && !$uh{'content-length'} && !$uh{'transfer-encoding'};
    push @out, @{ $o{extra} || [] };
    push @out, @user;

    my $user_close = grep {
        lc($_->[0]) eq 'connection' && $_->[1] =~ /(?:^|,)\s*close\s*(?:,|$)/i
    } @user;
    my $close = $o{close} || $c->{req_close} || $r->{q_close} || $user_close;
    if ($close) {
        push @out, ['Connection', 'close'] unless $user_close || $o{close_silent};
        $c->{closing} ||= $o{close_mode} || 'linger';
    }
    elsif ($r->{ka10} && !$uh{connection}) {
        push @out, ['Connection', 'keep-alive'];
    }

    return "$version $code $reason\r\n"
        . join('', map { "$_->[0]: $_->[1]\r\n" } @out)
        . _ids($c) . "\r\n";
}

sub _no_body_status {
    my $code = shift;
    return $code < 200 || $code == 204 || $code == 304;
}

# Complete response with a Content-Length framed body.
sub _respond {
    my ($c, $r, %o) = @_;
    my $code = $o{code} // 200;
    my $body = delete $o{body} // '';
    my $nb   = _no_body_status($code);
    $o{length} = length $body unless $nb || exists $o{length};
    $o{ctype}  = undef if $nb && !exists $o{ctype};
    my $head = _head($c, $r, %o);
    _write($c, ($nb || ($r->{method} // '') eq 'HEAD') ? $head : $head . $body);
}

sub _pattern {
    my ($alpha, $off, $len) = @_;
    my $L = length $alpha;
    my $start = $off % $L;
    return substr($alpha x (int(($start + $len) / $L) + 1), $start, $len);
}

sub _send_pattern {
    my ($c, $alpha, $len) = @_;
    my $off = 0;
    while ($off < $len) {
        my $n = $len - $off > 65536 ? 65536 : $len - $off;
        _write($c, _pattern($alpha, $off, $n));
        $off += $n;
    }
}

# ---------------------------------------------------------------------------
# endpoints
#
#  /echo...            200 text/plain: raw request head + "\n--body--\n" + body
#  /expect             like /echo; answers 100 Continue first when asked
#  /status/NNN         status NNN, body "status NNN\n"
#  /headers            200 "ok\n" (plus ?h=Name:Value headers)
#  /chunked            ?n=K&size=S[&ext=1][&trailer=1]
#  /length             ?size=S, Content-Length framed 0123456789...
#  /close-delimited    ?size=S, no framing, Connection: close, then close
#  /http10             ?size=S, HTTP/1.0 200 OK status line
#  /slow-head          ?ms=N delay before anything is sent
#  /slow-body          ?ms=N delay in the middle of a 10 byte body
#  /truncate-length    CL 1000, 100 bytes, close
#  /truncate-chunked   2 chunks, close without last-chunk
#  /garbage            "this is not http\r\n\r\n", close
#  /bad-status /bad-header /bad-length /two-lengths /te-and-cl
#  /huge-header?kb=N  /many-headers?n=N
#  /interim            100, 103, then 200 "final\n"
#  /no-content (204)   /not-modified (304 + ETag)
#  /close-after        200 "bye\n" + Connection: close, close
#  /drop-after         200 "kept\n" keep-alive, silently close ~ms (50) later
#  /close-next         200 "armed\n" keep-alive; the next request on the
#                      same connection is read (and logged), then the
#                      connection closes without an answer
#  /reset              read request, close with RST
#  /count              number of logged requests (not logged itself)
#  /reset-log          truncate the log (not logged)
#  /health             200 "ok\n", or the status /health-set gave
#  /health-set         ?code=N: /health answers N from now on (200 resets)
#  /conc               ?ms=N: sleeps N ms (default 200) counting how many
#                      /conc requests this origin serves at once
#  /conc-max           "CURRENT MAX" of /conc, then MAX = CURRENT
#  /pause              ?s=N (default 1, fractions ok): after answering, the
#                      origin stops for N seconds (refuses connections,
#                      closes the open ones), then serves again
#  /sleep-then-ok      ?ms=N then 200 "ok\n"
#  /ctr/NAME           200 "NAME n\n" + X-Count: n, n = requests for
#                      /ctr/NAME so far (this one included); options:
#                      ms=N delay first; etag=1 (ETag "NAME-<ver>",
#                      ver=V, default 1) and/or lm=EPOCH (Last-Modified):
#                      a matching If-None-Match (else If-Modified-Since)
#                      gets 304; cc=V / cc304=V: Cache-Control of 200s /
#                      of 304s; echo=Header appends the request's value;
#                      after=K&then=reset|hang|NNN: from request K+1 on,
#                      RST without answer, sleep hangms (5000) and close,
#                      or status NNN (no ?h= headers); size=S: a body of
#                      S bytes ("NAME n\n" then a..z), sent in drip=N
#                      pieces dripms=M apart (Content-Length, or chunked
#                      with chunked=1), cut=K: close after K bytes
#  anything else       404 "not found\n"
#
# Generic on all non-raw endpoints: ?h=Name:Value (repeatable, %-decoded)
# adds response headers, ?close=1 answers with Connection: close and closes.

my @ROUTES = (
    ['/echo'             => \&_h_echo],
    ['/expect'           => \&_h_echo],
    ['/status/'          => \&_h_status],
    ['/headers'          => \&_h_ok],
    ['/health-set'       => \&_h_health_set],
    ['/health'           => \&_h_health],
    ['/conc-max'         => \&_h_conc_max],
    ['/conc'             => \&_h_conc],
    ['/pause'            => \&_h_pause],
    ['/chunked'          => \&_h_chunked],
    ['/length'           => \&_h_length],
    ['/close-delimited'  => \&_h_close_delimited],
    ['/close-after'      => \&_h_close_after],
    ['/http10'           => \&_h_http10],
    ['/slow-head'        => \&_h_slow_head],
    ['/slow-body'        => \&_h_slow_body],
    ['/sleep-then-ok'    => \&_h_sleep_then_ok],
    ['/truncate-length'  => \&_h_truncate_length],
    ['/truncate-chunked' => \&_h_truncate_chunked],
    ['/garbage'          => \&_h_garbage],
    ['/bad-status'       => \&_h_bad_status],
    ['/bad-header'       => \&_h_bad_header],
    ['/bad-length'       => \&_h_bad_length],
    ['/two-lengths'      => \&_h_two_lengths],
    ['/te-and-cl'        => \&_h_te_and_cl],
    ['/huge-header'      => \&_h_huge_header],
    ['/many-headers'     => \&_h_many_headers],
    ['/interim'          => \&_h_interim],
    ['/no-content'       => \&_h_no_content],
    ['/not-modified'     => \&_h_not_modified],
    ['/drop-after'       => \&_h_drop_after],
    ['/close-next'       => \&_h_close_next],
    ['/reset-log'        => \&_h_reset_log],
    ['/reset'            => \&_h_reset],
    ['/count'            => \&_h_count],
    ['/ctr/'             => \&_h_ctr],
);

my %UNLOGGED = map { $_ => 1 } qw(/count /reset-log /health-set /conc-max
                                   /pause);

sub _handle {
    my ($c, $r) = @_;
    my ($prefix, $h);
    for my $rt (@ROUTES) {
        if (index($r->{path}, $rt->[0]) == 0) {
            ($prefix, $h) = @$rt;
            last;
        }
    }
    _log($c, $r) unless $prefix && $UNLOGGED{$prefix};
    if ($c->{close_next}) {
        # armed by /close-next: read this request, then close unanswered
        # (a backend closing an idle connection just as the proxy reuses it)
        $c->{closing} = 'plain';
        return;
    }
    if ($h) {
        $h->($c, $r);
    }
    else {
        _respond($c, $r, code => 404, body => "not found\n");
    }
}

sub _log {
    my ($c, $r) = @_;
    my $line = sprintf "conn=%d seq=%d method=%s uri=%s bodylen=%d\n",
        $c->{id}, $c->{seq}, $r->{method}, $r->{uri}, length $r->{body};
    open my $fh, '>>', $c->{log} or return;
    flock $fh, LOCK_EX;
    seek $fh, 0, 2;
    print {$fh} $line;
    close $fh;
}

sub _h_echo {
    my ($c, $r) = @_;
    _respond($c, $r, body => $r->{raw_head} . "\n--body--\n" . $r->{body});
}

sub _h_status {
    my ($c, $r) = @_;
    my ($code) = $r->{path} =~ m{^/status/(\d{3})(?:[/.;]|$)};
    if (!$code || $code < 100) {
        return _respond($c, $r, code => 400, body => "bad status code\n");
    }
    _respond($c, $r, code => $code + 0, body => "status $code\n");
}

sub _h_ok {
    my ($c, $r) = @_;
    _respond($c, $r, body => "ok\n");
}

# State shared by this origin's connection children lives in files next
# to its log (each origin has its own log).
sub _h_health {
    my ($c, $r) = @_;
    my $code = 200;
    if (open my $fh, '<', "$c->{log}.health") {
        my $l = <$fh>;
        $code = $1 + 0 if defined $l && $l =~ /^(\d{3})/;
        close $fh;
    }
    _respond($c, $r, code => $code,
             body => $code == 200 ? "ok\n" : "unhealthy\n");
}

sub _h_health_set {
    my ($c, $r) = @_;
    my $code = _qnum($r, 'code', 200, 599);
    if ($code == 200) {
        unlink "$c->{log}.health";
    }
    elsif (open my $fh, '>', "$c->{log}.health") {
        print {$fh} "$code\n";
        close $fh;
    }
    _respond($c, $r, body => "health $code\n");
}

# Adds $delta to the in-flight count of /conc; returns "CURRENT MAX".
# With $reset, MAX becomes CURRENT afterwards.
sub _conc_update {
    my ($c, $delta, $reset) = @_;
    sysopen my $fh, "$c->{log}.conc", Fcntl::O_RDWR() | Fcntl::O_CREAT()
        or return "0 0";
    flock $fh, LOCK_EX;
    my $l = <$fh> // '';
    my ($cur, $max) = $l =~ /^(-?\d+) (\d+)/ ? ($1, $2) : (0, 0);
    $cur += $delta;
    $max = $cur if $cur > $max;
    my $out = "$cur $max";
    $max = $cur if $reset;
    seek $fh, 0, 0;
    truncate $fh, 0;
    print {$fh} "$cur $max\n";
    close $fh;
    return $out;
}

sub _h_conc {
    my ($c, $r) = @_;
    _conc_update($c, 1);
    my $ok = eval { _msleep($c, _qnum($r, 'ms', 200, 600_000)); 1 };
    _conc_update($c, -1);
    die $@ unless $ok;
    _respond($c, $r, body => "conc\n");
}

sub _h_conc_max {
    my ($c, $r) = @_;
    _respond($c, $r, body => _conc_update($c, 0, 1) . "\n");
}

sub _h_pause {
    my ($c, $r) = @_;
    my $secs = _qval($r, 's') // 1;
    $secs = 1 unless $secs =~ /^\d+(?:\.\d+)?$/ && $secs <= 600;
    if (open my $fh, '>', "$c->{log}.pause") {
        print {$fh} "$secs\n";
        close $fh;
    }
    _respond($c, $r, body => "pausing $secs s\n", close => 1);
    kill 'USR1', $c->{server_pid};
}

sub _h_sleep_then_ok {
    my ($c, $r) = @_;
    _msleep($c, _qnum($r, 'ms', 1000, 600_000));
    _respond($c, $r, body => "ok\n");
}

sub _chunk {
    my ($data, $ext) = @_;
    return sprintf('%x', length $data) . ($ext // '') . "\r\n" . $data . "\r\n";
}

sub _h_chunked {
    my ($c, $r) = @_;
    my $n     = _qnum($r, 'n', 3, 1_000_000);
    my $size  = _qnum($r, 'size', 10, 64 * 1024 * 1024);
    my $ext   = _qflag($r, 'ext') ? ';foo=bar' : '';
    my $trail = _qflag($r, 'trailer');
    my @extra = (['Transfer-Encoding', 'chunked']);
    push @extra, ['Trailer', 'X-Trailer'] if $trail;
    _write($c, _head($c, $r, extra => \@extra));
    return if $r->{method} eq 'HEAD';
    if ($size > 0) {
        my $off = 0;
        for (1 .. $n) {
            _write($c, _chunk(_pattern(join('', 'a' .. 'z'), $off, $size), $ext));
            $off += $size;
        }
    }
    _write($c, "0$ext\r\n" . ($trail ? "X-Trailer: yes\r\n" : '') . "\r\n");
}

sub _h_length {
    my ($c, $r) = @_;
    my $size = _qnum($r, 'size', 100);
    _write($c, _head($c, $r, length => $size));
    return if $r->{method} eq 'HEAD';
    _send_pattern($c, '0123456789', $size);
}

sub _h_close_delimited {
    my ($c, $r) = @_;
    my $size = _qnum($r, 'size', 100);
    _write($c, _head($c, $r, close => 1));
    return if $r->{method} eq 'HEAD';
    _send_pattern($c, '0123456789', $size);
}

sub _h_http10 {
    my ($c, $r) = @_;
    my $size = _qnum($r, 'size', 100);
    my %o = (version => 'HTTP/1.0', length => $size);
    if (_qflag($r, 'keepalive') && !$c->{req_close}) {
        $o{extra} = [['Connection', 'keep-alive']];
    }
    else {
        # an HTTP/1.0 response without keep-alive ends the connection
        @o{qw(close close_silent)} = (1, 1);
    }
    _write($c, _head($c, $r, %o));
    return if $r->{method} eq 'HEAD';
    _send_pattern($c, '0123456789', $size);
}

sub _h_slow_head {
    my ($c, $r) = @_;
    _msleep($c, _qnum($r, 'ms', 1000, 600_000));
    _respond($c, $r, body => "slow\n");
}

sub _h_slow_body {
    my ($c, $r) = @_;
    my $ms = _qnum($r, 'ms', 1000, 600_000);
    _write($c, _head($c, $r, length => 10));
    return if $r->{method} eq 'HEAD';
    _write($c, '01234');
    _msleep($c, $ms);
    _write($c, '56789');
}

sub _h_truncate_length {
    my ($c, $r) = @_;
    _write($c, _head($c, $r, length => 1000) . _pattern('0123456789', 0, 100));
    $c->{closing} ||= 'linger';
}

sub _h_truncate_chunked {
    my ($c, $r) = @_;
    _write($c, _head($c, $r, extra => [['Transfer-Encoding', 'chunked']])
               . _chunk('abcde') . _chunk('fghij'));
    $c->{closing} ||= 'linger';
}

sub _h_garbage {
    my ($c, $r) = @_;
    _write($c, "this is not http\r\n\r\n");
    $c->{closing} = 'linger';
}

sub _raw_close {
    my ($c, $r, $raw) = @_;
    _write($c, $raw);
    $c->{closing} = 'linger';
}

sub _h_bad_status {
    my ($c, $r) = @_;
    _raw_close($c, $r, "HTTP/1.1 2000 Whatever\r\nContent-Type: text/plain\r\n"
        . "Content-Length: 3\r\nConnection: close\r\n" . _ids($c) . "\r\nok\n");
}

sub _h_bad_header {
    my ($c, $r) = @_;
    _raw_close($c, $r, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        . "BadHeaderWithoutColon\r\n"
        . "Content-Length: 3\r\nConnection: close\r\n" . _ids($c) . "\r\nok\n");
}

sub _h_bad_length {
    my ($c, $r) = @_;
    _raw_close($c, $r, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        . "Content-Length: 12abc\r\nConnection: close\r\n" . _ids($c)
        . "\r\nhello world\n");
}

sub _h_two_lengths {
    my ($c, $r) = @_;
    _raw_close($c, $r, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        . "Content-Length: 5\r\nContent-Length: 10\r\nConnection: close\r\n"
        . _ids($c) . "\r\n0123456789");
}

# Lying backend: chunked framing plus a wrong Content-Length.  The
# connection is kept open so a test can see whether the proxy reuses it.
sub _h_te_and_cl {
    my ($c, $r) = @_;
    _write($c, _head($c, $r, extra => [['Transfer-Encoding', 'chunked'],
                                       ['Content-Length', '3']])
               . ($r->{method} eq 'HEAD' ? '' : _chunk('hello') . "0\r\n\r\n"));
}

sub _h_huge_header {
    my ($c, $r) = @_;
    my $kb = _qnum($r, 'kb', 100, 64 * 1024);
    _respond($c, $r, extra => [['X-Huge', 'x' x ($kb * 1024)]], body => "ok\n");
}

sub _h_many_headers {
    my ($c, $r) = @_;
    my $n = _qnum($r, 'n', 1000, 1_000_000);
    _respond($c, $r, extra => [map { ["X-Many-$_", "value-$_"] } 1 .. $n],
             body => "ok\n");
}

sub _h_interim {
    my ($c, $r) = @_;
    _write($c, "HTTP/1.1 100 Continue\r\n\r\n");
    _write($c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n");
    _respond($c, $r, body => "final\n");
}

sub _h_no_content {
    my ($c, $r) = @_;
    _respond($c, $r, code => 204);
}

sub _h_not_modified {
    my ($c, $r) = @_;
    _respond($c, $r, code => 304, extra => [['ETag', '"rc-etag-1"']]);
}

sub _h_close_after {
    my ($c, $r) = @_;
    _respond($c, $r, body => "bye\n", close => 1);
}

sub _h_drop_after {
    my ($c, $r) = @_;
    _respond($c, $r, body => "kept\n");
    return if $c->{closing};    # client asked for close anyway
    _msleep($c, _qnum($r, 'ms', 50, 600_000));
    $c->{closing} = 'plain';
}

sub _h_close_next {
    my ($c, $r) = @_;
    _respond($c, $r, body => "armed\n");
    $c->{close_next} = 1;
}

sub _h_reset {
    my ($c, $r) = @_;
    $c->{closing} = 'rst';
}

sub _count_name {
    my ($c, $name) = @_;
    my $n = 0;
    if (open my $fh, '<', $c->{log}) {
        flock $fh, LOCK_SH;
        while (<$fh>) { $n++ if / uri=\/ctr\/\Q$name\E(?:[?\s])/ }
        close $fh;
    }
    return $n;
}

# "Sun, 06 Nov 1994 08:49:37 GMT" -> epoch, undef when not IMF-fixdate
sub _parse_httpdate {
    my ($s) = @_;
    my %mon; @mon{@MON} = 0 .. 11;
    return undef unless defined $s && $s =~
        /^\w{3}, (\d\d) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT$/;
    return undef unless exists $mon{$2};
    require Time::Local;
    return Time::Local::timegm($6, $5, $4, $1, $mon{$2}, $3);
}

sub _h_ctr {
    my ($c, $r) = @_;
    my ($name) = $r->{path} =~ m{^/ctr/([^/?]+)};
    $name //= 'x';
    my $n = _count_name($c, $name);
    _msleep($c, _qnum($r, 'ms', 0, 600_000));
    my $after = _qnum($r, 'after', undef);
    my $then = _qval($r, 'then') // '';
    if (defined $after && $n > $after) {
        if ($then eq 'reset') {
            $c->{closing} = 'rst';
            return;
        }
        if ($then eq 'hang') {
            _msleep($c, _qnum($r, 'hangms', 5000, 600_000));
            $c->{closing} = 'plain';
            return;
        }
        if ($then =~ /^\d{3}$/) {
            return _respond($c, $r, code => $then + 0,
                            body => "error $then\n", no_user => 1);
        }
    }
    my @extra = (['X-Count', $n]);
    my $etag;
    if (_qflag($r, 'etag')) {
        $etag = '"' . $name . '-' . (_qval($r, 'ver') // '1') . '"';
        push @extra, ['ETag', $etag];
    }
    my $lm = _qnum($r, 'lm', undef);
    push @extra, ['Last-Modified', _httpdate($lm)] if defined $lm;
    my $inm = join ', ', @{ $r->{headers}{'if-none-match'} || [] };
    my ($ims) = @{ $r->{headers}{'if-modified-since'} || [] };
    my $not_modified = 0;
    if (length $inm) {
        $not_modified = defined $etag && index($inm, $etag) >= 0;
    }
    elsif (defined $ims && defined $lm) {
        my $t = _parse_httpdate($ims);
        $not_modified = defined $t && $t >= $lm;
    }
    my $cc = _qval($r, $not_modified ? 'cc304' : 'cc');
    push @extra, ['Cache-Control', $cc] if defined $cc;
    if ($not_modified) {
        return _respond($c, $r, code => 304, extra => \@extra);
    }
    my $body = "$name $n";
    if (my $hn = _qval($r, 'echo')) {
        $body .= ' ' . join(', ', @{ $r->{headers}{lc $hn} || [] });
    }
    my $size = _qnum($r, 'size', undef, 64 * 1024 * 1024);
    return _drip($c, $r, \@extra, "$body\n", $size) if defined $size;
    _respond($c, $r, extra => \@extra, body => "$body\n");
}

# /ctr's size=S body: $text then a..z up to S bytes, in drip=N pieces
# dripms=M apart; chunked=1; cut=K closes the connection after K bytes.
sub _drip {
    my ($c, $r, $extra, $text, $size) = @_;
    my $pieces  = _qnum($r, 'drip', 1, 100_000) || 1;
    my $gap     = _qnum($r, 'dripms', 0, 600_000);
    my $cut     = _qnum($r, 'cut', undef);
    my $chunked = _qflag($r, 'chunked');
    $text .= _pattern(join('', 'a' .. 'z'), 0, $size - length $text)
        if $size > length $text;
    $text = substr($text, 0, $size);
    my @extra = @$extra;
    push @extra, ['Transfer-Encoding', 'chunked'] if $chunked;
    _write($c, _head($c, $r, extra => \@extra,
                     $chunked ? () : (length => $size)));
    return if $r->{method} eq 'HEAD';
    my $limit = defined $cut && $cut < $size ? $cut : $size;
    my $per = int(($size + $pieces - 1) / $pieces) || 1;
    for (my $off = 0; $off < $limit; $off += $per) {
        _msleep($c, $gap) if $off > 0 && $gap;
        my $n = $off + $per > $limit ? $limit - $off : $per;
        my $d = substr($text, $off, $n);
        _write($c, $chunked ? _chunk($d) : $d);
    }
    if ($limit < $size) {
        $c->{closing} ||= 'linger';
        return;
    }
    _write($c, "0\r\n\r\n") if $chunked;
}

sub _h_count {
    my ($c, $r) = @_;
    my $n = 0;
    if (open my $fh, '<', $c->{log}) {
        flock $fh, LOCK_SH;
        $n++ while <$fh>;
        close $fh;
    }
    _respond($c, $r, body => $n);
}

sub _h_reset_log {
    my ($c, $r) = @_;
    if (open my $fh, '>>', $c->{log}) {
        flock $fh, LOCK_EX;
        truncate $fh, 0;
        close $fh;
    }
    _respond($c, $r, body => "ok\n");
}

1;
