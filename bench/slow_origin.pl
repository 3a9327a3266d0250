#!/usr/bin/perl
# slow_origin.pl PORT DELAY - a tiny HTTP/1.1 backend for bench/run's
# collapsed-forwarding case. Every request (except GET /count) is answered
# DELAY seconds after it arrived with 1 KiB and "Cache-Control: max-age=600",
# so that caches may store it. GET /count answers at once with the number of
# delayed requests seen so far. One process, non-blocking, keep-alive, any
# number of concurrent connections.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

my ($port, $delay) = @ARGV;
die "usage: $0 PORT DELAY\n" unless $port && defined $delay;
my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 4096, ReuseAddr => 1, Blocking => 0) or die "listen: $!\n";
my $sel = IO::Select->new($ls);
my (%buf, %out, @due);
my $count = 0;
my $body = 'x' x 1024;
$SIG{PIPE} = 'IGNORE';
$SIG{TERM} = sub { exit 0 };

sub respond {
    my ($fh, $text) = @_;
    $out{$fh} .= $text;
    flush($fh);
}
sub flush {
    my ($fh) = @_;
    return unless exists $out{$fh} && length $out{$fh};
    my $n = syswrite($fh, $out{$fh});
    if (!defined $n) { drop($fh) unless $!{EAGAIN}; return; }
    substr($out{$fh}, 0, $n) = '';
}
sub drop {
    my ($fh) = @_;
    $sel->remove($fh);
    delete $buf{$fh}; delete $out{$fh};
    close $fh;
}
sub resp {
    my ($b) = @_;
    return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
         . "Cache-Control: max-age=600\r\nContent-Length: " . length($b)
         . "\r\n\r\n$b";
}
while (1) {
    my $now = time;
    my $timeout = @due ? ($due[0][0] - $now) : 1;
    $timeout = 0 if $timeout < 0;
    for my $fh ($sel->can_read($timeout)) {
        if ($fh == $ls) {
            while (my $c = $ls->accept) { $c->blocking(0); $sel->add($c); $buf{$c} = ''; }
            next;
        }
        my $n = sysread($fh, my $data, 65536);
        if (!defined $n) { next if $!{EAGAIN}; drop($fh); next; }
        if ($n == 0) { drop($fh); next; }
        $buf{$fh} .= $data;
        while ($buf{$fh} =~ s/^(.*?)\r\n\r\n//s) {
            my $head = $1;
            my ($path) = $head =~ m{^\S+\s+(\S+)};
            $path //= '/';
            if ($path =~ m{^/count}) {
                respond($fh, resp("$count\n"));
            } else {
                $count++;
                push @due, [time + $delay, $fh];
            }
        }
    }
    $now = time;
    while (@due && $due[0][0] <= $now) {
        my (undef, $fh) = @{ shift @due };
        next unless exists $buf{$fh};
        respond($fh, resp($body));
    }
    for my $fh ($sel->handles) { flush($fh) if $fh != $ls && exists $out{$fh} && length $out{$fh}; }
}
