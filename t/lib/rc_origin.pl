#!/usr/bin/perl
# Run the RcOrigin test origin server standalone.
#   perl t/lib/rc_origin.pl PORT LOGFILE      (PORT 0 = pick a free port)
# Stops on SIGINT/SIGTERM (or when this script is killed).
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use IO::Socket::INET;
use POSIX ();
use RcOrigin;

my ($port, $log) = @ARGV;
die "usage: $0 PORT LOGFILE\n" unless defined $port && $port =~ /^\d+$/ && defined $log;

my $sock = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1',
    LocalPort => $port,
    Proto     => 'tcp',
    Listen    => 128,
    ReuseAddr => 1,
) or die "cannot listen on 127.0.0.1:$port: $@\n";
$port = $sock->sockport;

my $pid = RcOrigin::spawn(listen_sock => $sock, log => $log, quiet => 0);
$| = 1;
print "rc_origin listening on 127.0.0.1:$port (server pid $pid, log $log)\n";

my $stop = 0;
$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { $stop = 1 };
while (!$stop) {
    my $r = waitpid($pid, POSIX::WNOHANG());
    if ($r == $pid || $r == -1) {
        print "rc_origin server exited\n";
        exit 1;
    }
    select(undef, undef, undef, 0.2);
}
RcOrigin::stop($pid);
print "rc_origin stopped\n";
exit 0;
