package RcTest;

# Helpers shared by the mod_revcache Apache::Test files:
#   origin_count()            requests the test origin has seen
#   raw($bytes, %o)           one raw exchange with the front server
#   LogWatch->new / ->check   fail on unexpected [error]/[warn] lines
#   parallel($n, $req, %o)    $n raw exchanges at once (one process each)
#   parse_raw($bytes)         {code, h => {lc name => value}, body}
#   lb_get($path, @headers)   one GET: (code, X-Origin-Port, response)
#   parallel_get($c, $n, $path, secs => S)   "CODE PORT" of many GETs
#   spawn_origin($n) / stop_origin($pid)     an origin on RC_SPARE<n>_PORT
#   wait_log($watch, $re, $secs), wait_probes($log, $n, $secs)

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);
use POSIX ();
use Apache::Test ();
use Apache::TestRequest ();
use Apache::TestUtil ();

our @EXPORT_OK = qw(origin_port origin_count origin_log raw raw_port
                    front_port spawn_origin stop_origin lb_get parallel_get
                    wait_log wait_probes parallel parse_raw);

sub origin_port { $ENV{RC_ORIGIN_PORT} }

# One GET straight to an origin (not through httpd): the whole response.
sub direct_raw {
    my ($path, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port || origin_port(),
                                  Timeout => 5)
        or die "origin: $!";
    print $s "GET $path HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n";
    local $/;
    return scalar <$s>;
}

sub _direct {
    my $r = direct_raw(@_);
    $r =~ s/^.*?\r\n\r\n//s;
    return $r;
}

# Which member answered each of $n GETs of $path through a balancer:
# { origin port => count, "errNNN" => count }.
sub lb_spread {
    my ($path, $n) = @_;
    my %n;
    for (1 .. ($n || 20)) {
        my ($c, $p) = lb_get($path);
        $n{$c == 200 ? $p : "err$c"}++;
    }
    return \%n;
}

# Requests seen by the origin (from its log), optionally only those whose
# line matches a pattern.
sub origin_count {
    my ($re) = @_;
    return _direct('/count') + 0 unless $re;
    return scalar grep { $_ =~ $re } origin_log();
}

sub origin_log {
    open my $fh, '<', $ENV{RC_ORIGIN_LOG} or return ();
    return <$fh>;
}

sub front_port {
    my ($module) = @_;
    my $cfg = Apache::Test::config();
    return $module ? $cfg->{vhosts}->{$module}->{port}
                   : $cfg->{vars}->{port};
}

# Sends raw bytes to a port of the test server and reads until the peer
# closes or the timeout passes. Returns (bytes, closed_by_peer).
sub raw_port {
    my ($port, $req, %o) = @_;
    my $timeout = $o{timeout} || 10;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 5) or die "connect: $!";
    print $s $req;
    my $sel = IO::Select->new($s);
    my ($buf, $closed) = ('', 0);
    my $end = time + $timeout;
    while (time < $end) {
        last if $o{until} && $buf =~ $o{until};
        my @r = $sel->can_read($end - time) or last;
        my $n = sysread($s, my $chunk, 65536);
        if (!$n) { $closed = 1; last }
        $buf .= $chunk;
    }
    return wantarray ? ($buf, $closed) : $buf;
}

sub raw {
    my ($req, %o) = @_;
    return raw_port(front_port($o{module}), $req, %o);
}

# Starts an origin on the free port RC_SPARE<n>_PORT (or on port => P),
# logging to t/logs/spare<n>.log. Returns its pid for stop_origin().
sub spawn_origin {
    my ($n, %o) = @_;
    my $port = $o{port} || $ENV{"RC_SPARE${n}_PORT"} or die "no port $n";
    my $s;
    for (1 .. 50) {
        $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $port, Proto => 'tcp',
                                   Listen => 128, ReuseAddr => 1) and last;
        select(undef, undef, undef, 0.1);
    }
    $s or die "listen on $port: $!";
    require RcOrigin;
    return RcOrigin::spawn(listen_sock => $s, log => $o{log}
        || Apache::Test::vars('t_logs') . "/spare$n.log");
}

sub stop_origin {
    my ($pid) = @_;
    require RcOrigin;
    RcOrigin::stop($pid);
}

sub _ua {
    require LWP::UserAgent;
    return LWP::UserAgent->new(keep_alive => 1, timeout => 30);
}

sub _url { 'http://' . Apache::TestRequest::hostport() . $_[0] }

# One GET through the front server: (code, origin port, response).
my $ua;
sub lb_get {
    my ($path, @headers) = @_;
    $ua ||= _ua();
    my $res = $ua->get(_url($path), @headers);
    return ($res->code, $res->header('X-Origin-Port') // '-', $res);
}

# $clients processes GET $path $n times each, at once (with secs => S:
# as many times as they can for S seconds); returns the list of
# "CODE PORT" strings, one per request, in no particular order.
sub parallel_get {
    my ($clients, $n, $path, %o) = @_;
    my $end = time + ($o{secs} || 0);
    pipe my $rd, my $wr or die "pipe: $!";
    my @pids;
    for (1 .. $clients) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            close $rd;
            my $u = _ua();
            my $out = '';
            for (my $i = 0; $o{secs} ? time < $end : $i < $n; $i++) {
                my $res = $u->get(_url(ref $path ? $path->() : $path));
                $out .= $res->code . ' '
                      . ($res->header('X-Origin-Port') // '-') . "\n";
            }
            syswrite $wr, $out;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $wr;
    my @lines = map { chomp; $_ } <$rd>;
    waitpid $_, 0 for @pids;
    return @lines;
}

# Waits up to $secs for a new line matching $re in the error log after
# position $watch (a LogWatch); returns the line or undef.
sub wait_log {
    my ($watch, $re, $secs) = @_;
    my $end = time + ($secs || 5);
    while (time < $end) {
        my ($l) = grep { $_ =~ $re } $watch->lines;
        return $l if $l;
        select(undef, undef, undef, 0.05);
    }
    return undef;
}

# Waits (up to $secs, default 15) until the health-check prober has sent
# $n more probes to the origin that logs to $log. mod_watchdog hands the
# singleton to another child ~10 s after the one running it exits (e.g.
# prefork retiring an idle child), so a test first makes sure it runs.
sub wait_probes {
    my ($log, $n, $secs) = @_;
    my $count = sub {
        open my $fh, '<', $log or return 0;
        return scalar grep { m{uri=/health } } <$fh>;
    };
    my $start = $count->();
    my $end = time + ($secs || 15);
    while (time < $end) {
        return 1 if $count->() >= $start + ($n || 1);
        select(undef, undef, undef, 0.05);
    }
    return 0;
}

# Sends $n raw requests at the same time, each from its own process on
# its own connection ($req: the bytes, or a sub taking the index and
# returning them; ask for "Connection: close"). Returns the raw
# responses in order.
sub parallel {
    my ($n, $req, %o) = @_;
    require File::Temp;
    require POSIX;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my @pids;
    for my $i (0 .. $n - 1) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            my $bytes = ref $req ? $req->($i) : $req;
            my $r = eval { scalar raw($bytes, %o) } // '';
            if (open my $fh, '>', "$dir/$i") {
                print $fh $r;
                close $fh;
            }
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my @out;
    for my $i (0 .. $n - 1) {
        my $r = '';
        if (open my $fh, '<', "$dir/$i") {
            local $/;
            $r = <$fh>;
        }
        push @out, $r;
    }
    return @out;
}

# Splits a raw HTTP/1.1 response (Content-Length or chunked body).
sub parse_raw {
    my ($raw) = @_;
    my %r = (code => 0, h => {}, body => '');
    my ($head, $body) = split /\r\n\r\n/, $raw // '', 2;
    return \%r unless defined $head && $head =~ m{^HTTP/\d\.\d (\d{3})};
    $r{code} = $1;
    for (split /\r\n/, $head) {
        next unless /^([^:\s]+):\s*(.*)$/;
        my $k = lc $1;
        $r{h}{$k} = exists $r{h}{$k} ? "$r{h}{$k}, $2" : $2;
    }
    $body //= '';
    if (($r{h}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r]*\r\n//) {
            my $n = hex $1;
            last if !$n;
            $out .= substr($body, 0, $n, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    $r{body} = $body;
    return \%r;
}

# Runs `httpd -t` on a small config: a preamble of PREAMBLE_LINES lines
# (MPM, authz_core, this module, logs) then $body. Returns (exit code,
# output, file) so a test can check "Syntax error on line N of FILE".
use constant PREAMBLE_LINES => 5;
my $configtest_dir;

sub configtest {
    my ($body) = @_;
    my $vars = Apache::Test::vars();
    my $mods = '/usr/lib/apache2/modules';
    require File::Temp;
    $configtest_dir ||= File::Temp::tempdir(CLEANUP => 1);
    my $dir = $configtest_dir;
    my $file = "$dir/test.conf";
    open my $fh, '>', $file or die "$file: $!";
    print $fh "LoadModule mpm_event_module $mods/mod_mpm_event.so\n"
            . "LoadModule authz_core_module $mods/mod_authz_core.so\n"
            . "LoadModule revcache_module $vars->{serverroot}/../.libs/mod_revcache.so\n"
            . "ErrorLog $dir/error_log\n"
            . "PidFile $dir/pid\n"
            . "$body\n";
    close $fh;
    my $out = `$vars->{httpd} -t -f $file 2>&1`;
    return ($? >> 8, $out, $file);
}

# For each [body, reason regex, line (default 1)] of @$bad: configtest
# fails, and its message names the file, the line and the reason. The
# first $label_lines lines of a body (default 1) name the case.
sub check_bad_configs {
    my ($bad, $label_lines) = @_;
    $label_lines ||= 1;
    for my $case (@$bad) {
        my ($body, $re, $line) = @$case;
        $line ||= 1;
        my ($rc, $out, $file) = configtest($body);
        my $first = join ' | ', grep { defined }
                    (split /\n/, $body)[0 .. $label_lines - 1];
        Test::More::isnt($rc, 0, "configtest fails: $first");
        Test::More::like($out, qr/Syntax error on line @{[$line + PREAMBLE_LINES]} of \Q$file\E:\s*(?:\S.*\n)?.*$re/,
                         "file, line and reason named: $first")
            or Test::More::diag($out);
    }
}

package RcTest::LogWatch;

# Remembers where the error log ends; check() fails the test (one
# Test::More-style ok) when new [error]/[warn]/[crit]/[emerg] lines
# appear that no pattern in @allowed explains.
sub new {
    my ($class) = @_;
    my $file = Apache::Test::vars('t_logs') . '/error_log';
    return bless { file => $file, pos => -s $file || 0 }, $class;
}

sub lines {
    my ($self) = @_;
    open my $fh, '<', $self->{file} or return ();
    seek $fh, $self->{pos}, 0;
    return <$fh>;
}

sub check {
    my ($self, @allowed) = @_;
    # Lines can arrive a moment after the response.
    select(undef, undef, undef, 0.3);
    my @bad = grep {
        my $l = $_;
        /\[(?:[\w]+:)?(?:error|warn|crit|alert|emerg)\]/
            && !grep { $l =~ $_ } @allowed
    } $self->lines;
    Test::More::diag("unexpected log line: $_") for @bad;
    return !@bad;
}

1;
