package RcTest;

# Helpers shared by the mod_revcache Apache::Test files:
#   origin_count()            requests the test origin has seen
#   raw($bytes, %o)           one raw exchange with the front server
#   LogWatch->new / ->check   fail on unexpected [error]/[warn] lines

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
                    front_port);

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
