#!/usr/bin/perl
# -l: listen on the named interfaces only: 127.0.0.1, ::1, comma-separated
# lists, and host:port entries (which override -p for that entry).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::IP;
use Test::More;
use MemcachedTest;

my $VERSION = "VERSION " . expected_version() . "\r\n";

sub talk {
    my ($host, $port) = @_;
    my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port, Proto => 'tcp', Timeout => 2)
        or return '<refused>';
    send_bytes($s, "version\r\n");
    return read_line($s) // '<no answer>';
}

sub udp_talk {
    my ($host, $port) = @_;
    my $u = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port, Proto => 'udp') or return '<no socket>';
    udp_request($u, 42, "version\r\n");
    return udp_response($u, 42) // '<no answer>';
}

# IPv4 loopback only.
my $v4 = start_server('-l 127.0.0.1');
is(talk('127.0.0.1', $v4->port), $VERSION, '-l 127.0.0.1: answers on 127.0.0.1');
is(talk('::1', $v4->port), '<refused>', '-l 127.0.0.1: nothing on ::1');
is(stats($v4->new_sock, 'settings')->{inter}, '127.0.0.1', 'stats settings: inter');

# IPv6 loopback only.
my $p6 = free_port();
my $v6 = start_server("-p $p6 -l ::1");
is(talk('::1', $p6), $VERSION, '-l ::1: answers on ::1');
is(talk('127.0.0.1', $p6), '<refused>', '-l ::1: nothing on 127.0.0.1');
my $s6 = $v6->new_sock;
cmd_is($s6, "set k 0 0 2\r\nv6\r\n", "STORED\r\n", 'set over IPv6');
mem_get_is($s6, 'k', 'v6');
my $c = stats($s6, 'conns');
ok((grep { /^\d+:addr$/ && $c->{$_} =~ /^tcp6:\[::1\]:\d+$/ } keys %$c), 'stats conns shows the IPv6 client')
    or diag(explain($c));

# Both, with UDP.
my $pb = free_port();
my $both = start_server("-p $pb -U $pb -l 127.0.0.1,::1");
is(talk('127.0.0.1', $pb), $VERSION, '-l 127.0.0.1,::1: TCP on 127.0.0.1');
is(talk('::1', $pb), $VERSION, '-l 127.0.0.1,::1: TCP on ::1');
is(udp_talk('127.0.0.1', $pb), $VERSION, '-l 127.0.0.1,::1: UDP on 127.0.0.1');
is(udp_talk('::1', $pb), $VERSION, '-l 127.0.0.1,::1: UDP on ::1');

# host:port entries.
my ($p1, $p2) = (free_port(), free_port());
$p2 = free_port() while $p2 == $p1;
my $multi = start_server("-p $p1 -l 127.0.0.1:$p1,127.0.0.1:$p2,[::1]:$p2");
is(talk('127.0.0.1', $p1), $VERSION, 'host:port list: first entry');
is(talk('127.0.0.1', $p2), $VERSION, 'host:port list: second port');
is(talk('::1', $p2), $VERSION, 'host:port list: [::1]:port');
is(talk('::1', $p1), '<refused>', 'host:port list: nothing that was not listed');

# Items are shared between listeners.
my $a = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $p1, Proto => 'tcp');
my $b = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $p2, Proto => 'tcp');
cmd_is($a, "set shared 0 0 1\r\ns\r\n", "STORED\r\n");
mem_get_is($b, 'shared', 's', name => 'a value set on one listener is read on another');

done_testing;
