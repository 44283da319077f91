#!/usr/bin/perl
# A malformed, oversized or unexpected replication message closes that
# link with a log line; the node keeps serving and its data is intact.
# Covers a fake peer the node dials, and garbage sent to the node's own
# replication listener.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use IO::Socket::INET;

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

sub frame { my ($type, $body) = @_; return pack('N C x3', length $body, $type) . $body }
sub hello {
    my ($run) = @_;
    return frame(1, 'MCREPL' . pack('n n Q> C C Q>', 1, 1, $run, 7, 0, 1 << 40));
}

my @garbage = (
    ['HTTP request', "GET / HTTP/1.0\r\n\r\n"],
    ['bad magic', frame(1, 'XXREPL' . ("\0" x 22))],
    ['oversized frame', pack('N C x3', 0x7fffffff, 2)],
    ['reserved bytes set', pack('N C C x2', 0, 5, 1)],
    ['ITEM before HELLO', frame(2, "\0" x 34)],
    ['unknown type', hello(42) . frame(99, '')],
    ['ITEM lengths wrong', hello(43) . frame(2, pack('Q> Q> N q> C C N', 5, 5, 0, 0, 3, 0, 100) . 'key')],
    ['empty key', hello(44) . frame(3, pack('Q> C', 5, 0))],
    ['second HELLO', hello(45) . hello(46)],
    ['ACK beyond sent', hello(47) . frame(7, pack('Q>', 1 << 40))],
);

# 1. Garbage to the node's replication listener.
my $rport = free_port();
my $node = start_node($rport, args => '-v');
my $s = $node->new_sock;
cmd_is($s, "set keep 0 0 4\r\nkeep\r\n", "STORED\r\n");
ok(wait_until(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport") }, 10),
   'node listens on its replication port');
for my $g (@garbage) {
    my ($name, $bytes) = @$g;
    my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport") or die "connect: $!";
    send_bytes($c, $bytes);
    my (undef, $eof) = read_available($c, 3 * timeout_scale());
    ok($eof, "$name: link closed");
    mem_get_is($s, 'keep', 'keep', name => "$name: node still serves, data intact");
}
like($node->stderr_text, qr/Replication.*(closed|lost)/i, 'closing logged under -v');
ok($node->alive, 'node alive after all the garbage');
$node->stop;

# 2. A fake peer the node dials: it answers with garbage after a HELLO.
my $fake = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5, ReuseAddr => 1)
    or die "listen: $!";
$fake->blocking(0);
my $fport = $fake->sockport;
my $dialer = start_server("-x 127.0.0.1:$fport -X " . free_port() . " -v");
my $ds = $dialer->new_sock;
for my $g (@garbage[0 .. 3]) {
    my ($name, $bytes) = @$g;
    my $c;
    ok(wait_until(sub { $c = $fake->accept }, $ReplTest::DEADLINE), "$name: node dialed the fake peer");
    next unless $c;
    send_bytes($c, $bytes);
    my (undef, $eof) = read_available($c, 3 * timeout_scale());
    ok($eof, "$name: node closed the link to the fake peer");
    cmd_is($ds, "set after 0 0 2\r\nok\r\n", "STORED\r\n", "$name: node still serves");
}
ok($dialer->alive, 'dialing node alive');

done_testing;
