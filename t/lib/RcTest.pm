package RcTest;

# Helpers shared by the mod_revcache Apache::Test files:
#   origin_count()            requests the test origin has seen
#   raw($bytes, %o)           one raw exchange with the front server
#   LogWatch->new / ->check   fail on unexpected [error]/[warn] lines
#   parallel($n, $req, %o)    $n raw exchanges at once (one process each)
#   parse_raw($bytes)         {code, h => {lc name => value}, body}

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);
use Apache::Test ();
use Apache::TestRequest ();
use Apache::TestUtil ();

our @EXPORT_OK = qw(origin_port origin_count origin_log raw raw_port
                    front_port parallel parse_raw);

sub origin_port { $ENV{RC_ORIGIN_PORT} }

sub _direct {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => origin_port(), Timeout => 5)
        or die "origin: $!";
    print $s "GET $path HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n";
    local $/;
    my $r = <$s>;
    $r =~ s/^.*?\r\n\r\n//s;
    return $r;
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
