#!/usr/bin/perl
# -U: the UDP interface.  Each datagram carries the 8-byte frame header
# (request id, sequence number, datagram count, reserved); answers longer
# than one datagram are split and must reassemble exactly.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server(udp => 1);
my $tcp  = $srv->new_sock;
my $udp  = $srv->new_udp_sock;
my $VERSION = "VERSION " . expected_version() . "\r\n";

is(stats($tcp, 'settings')->{udpport}, $srv->udp_port, 'stats settings: udpport');

# All datagrams answering $reqid, raw: wait up to $first seconds for the
# first; then, if $complete is given, for as long as it says (given the
# datagrams so far) that the answer is not whole yet, up to the read
# timeout (a loaded server may pause between two datagrams); then until
# none arrives for 0.3 s.
sub datagrams {
    my ($reqid, $first, $complete) = @_;
    $first //= 2;
    my $sel = IO::Select->new($udp);
    my $deadline = time + $first + $MemcachedTest::TIMEOUT;
    my @d;
    while (1) {
        my $wait = !@d ? $first
                 : $complete && !$complete->(@d) ? $deadline - time
                 : 0.3;
        last if $wait <= 0 || !$sel->can_read($wait);
        defined recv($udp, my $dgram, 65536, 0) or last;
        push @d, $dgram if length $dgram >= 8 && unpack('n', $dgram) == $reqid;
    }
    return @d;
}

# Has an answer to a get come whole: every datagram of the VALUE message
# (by its count) and the END, in that message or in its own?
sub get_complete {
    my @parts = grep { substr($_, 8) ne "END\r\n" } @_;
    my $ended = grep { substr($_, 8) eq "END\r\n" } @_;
    return 0 unless @parts;
    my %seq = map { ((unpack('nnn', $_))[1] => $_) } @parts;
    return 0 unless keys %seq == (unpack('nnn', $parts[0]))[2];
    return $ended || join('', map { substr($seq{$_}, 8) } sort { $a <=> $b } keys %seq) =~ /END\r\n\z/;
}

# One request, one answer: header fields are echoed and set.
udp_request($udp, 1234, "version\r\n");
my @d = datagrams(1234);
is(scalar @d, 1, 'version: one datagram');
my ($id, $seq, $total, $res) = unpack('nnnn', $d[0] // "\0" x 8);
is($id, 1234, 'request id echoed');
is($seq, 0, 'sequence number 0');
is($total, 1, 'datagram count 1');
is($res, 0, 'reserved 0');
is(substr($d[0] // '', 8), $VERSION, 'payload is the TCP answer');

# Storage and retrieval over UDP, visible over TCP and back.
udp_request($udp, 2, "set u1 5 0 3\r\nabc\r\n");
is(udp_response($udp, 2), "STORED\r\n", 'set over UDP');
mem_get_is($tcp, 'u1', 'abc', flags => 5, name => 'UDP set seen over TCP');
cmd_is($tcp, "set t1 0 0 3\r\nxyz\r\n", "STORED\r\n");
udp_request($udp, 3, "get t1 u1 nokey\r\n");
is(udp_response($udp, 3, undef, qr/END\r\n\z/), "VALUE t1 0 3\r\nxyz\r\nVALUE u1 5 3\r\nabc\r\nEND\r\n", 'multi-key get over UDP');
udp_request($udp, 4, "incr nokey 1\r\n");
is(udp_response($udp, 4), "NOT_FOUND\r\n", 'incr miss over UDP');
udp_request($udp, 5, "delete u1\r\n");
is(udp_response($udp, 5), "DELETED\r\n", 'delete over UDP');
udp_request($udp, 6, "bogus\r\n");
is(udp_response($udp, 6), "ERROR\r\n", 'unknown command over UDP');
udp_request($udp, 65535, "version\r\n");
is(udp_response($udp, 65535), $VERSION, 'request id 65535');
udp_request($udp, 0, "version\r\n");
is(udp_response($udp, 0), $VERSION, 'request id 0');

# Large answers span datagrams.
# (Up to 100 KB: more could overflow the client's default receive buffer.)
for my $len (1000, 5000, 30_000, 100_000) {
    my $v = join '', map { chr(48 + ($_ * 7) % 75) } 1 .. $len;
    cmd_is($tcp, "set big 0 0 $len\r\n$v\r\n", "STORED\r\n");
    my $reqid = 100 + $len % 60000;
    udp_request($udp, $reqid, "get big\r\n");
    my @parts = grep { substr($_, 8) ne "END\r\n" } datagrams($reqid, 2 * timeout_scale(), \&get_complete);
    my @hdr = map { [unpack('nnnn', $_)] } @parts;
    my $n = @parts;
    my $want = "VALUE big 0 $len\r\n$v\r\n";
    my $expected_n = $len < 1300 ? 1 : 2;
    cmp_ok($n, '>=', $expected_n, "$len bytes: $n datagrams");
    is(scalar(grep { $_->[2] != $n } @hdr), 0, "$len bytes: every header gives the count $n");
    is(join(',', sort { $a <=> $b } map { $_->[1] } @hdr), join(',', 0 .. $n - 1),
       "$len bytes: sequence numbers 0..n-1");
    is(scalar(grep { length($_) > 1400 } @parts), 0, "$len bytes: no datagram over 1400 bytes");
    my %by = map { (unpack('x2n', $_) => substr($_, 8)) } @parts;
    my $payload = join '', map { $by{$_} } sort { $a <=> $b } keys %by;
    # END may come in the same message or (memcached 1.6) in its own.
    ok($payload eq "$want" . "END\r\n" || $payload eq $want, "$len bytes: reassembled answer is exact");
}

# stats over UDP ends with END.
udp_request($udp, 7, "stats\r\n");
my $stats = udp_response($udp, 7, undef, qr/END\r\n\z/);
like($stats // '', qr/\ASTAT pid \d+\r\n.*END\r\n\z/s, 'stats over UDP');

# Requests the server must drop: multi-datagram requests and runts.
send($udp, pack('nnnn', 8, 0, 2, 0) . "version\r\n", 0);
is(scalar(datagrams(8, 0.5)), 0, 'a request announcing 2 datagrams gets no answer');
send($udp, "abc", 0);
udp_request($udp, 9, "version\r\n");
is(udp_response($udp, 9), $VERSION, 'a runt datagram is ignored, the next request answered');

# Many clients at once.
my @clients = map { $srv->new_udp_sock } 1 .. 20;
udp_request($clients[$_], 1000 + $_, "get t1\r\n") for 0 .. $#clients;
my $ok = grep { (udp_response($clients[$_], 1000 + $_, undef, qr/END\r\n\z/) // '') eq "VALUE t1 0 3\r\nxyz\r\nEND\r\n" } 0 .. $#clients;
is($ok, 20, '20 UDP clients answered');

# TCP unaffected.
cmd_is($tcp, "version\r\n", $VERSION, 'TCP still answers');

done_testing;
