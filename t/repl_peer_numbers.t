#!/usr/bin/perl
# Numbers a replication peer sends are not trusted blindly (found by
# fuzz/fuzz_repl.c): SYNC_BEGIN's item count only sizes the hash table up
# to what -m can hold.  A count of 2^40 once asked for a 2^32-bucket
# (32 GB) table, and the failed allocation stopped the table from ever
# growing again.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use IO::Socket::INET;
use Time::HiRes qw(time);

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

sub frame { my ($type, $body) = @_; return pack('N C x3', length $body, $type) . $body }

# A version (clock.h layout) of the current time, node id 9.
sub version_now {
    my $ms = int(time() * 1000) - 1577836800000;
    return ($ms << 20) | 9;
}

sub hello {
    my ($run, $clock) = @_;
    return frame(1, 'MCREPL' . pack('n n Q> C C Q>', 1, 1, $run, 9, 0, $clock));
}

my $rport = free_port();
my $node = start_node($rport, args => '-v');
my $s = $node->new_sock;
ok(wait_until(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport") }, 10),
   'node listens on its replication port');

# Send $bytes as a peer, then wait until the node closes the link (when
# $closes) or for a moment, and hang up.
sub as_peer {
    my ($bytes, $closes, $name) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport") or die "connect: $!";
    send_bytes($c, $bytes);
    my (undef, $eof) = read_available($c, ($closes ? 3 : 1) * timeout_scale());
    ok($eof, "$name: node closed the link") if $closes;
    close($c);
}

# 1. SYNC_BEGIN announcing 2^40 items.
as_peer(hello(0x1111, version_now()) . frame(5, pack('Q>', 1 << 40)) . frame(6, pack('Q>', 0)),
        0, 'huge SYNC_BEGIN');
# The expansion runs in the background: give it time to (not) happen.
ok(!wait_until(sub { stats($s)->{hash_power_level} > 20 }, 2 * timeout_scale(), 0.1),
   'hash table not sized beyond what -m 64 holds');
cmd_is($s, "set after_sync 0 0 2\r\nok\r\n", "STORED\r\n", 'node still serves');
unlike($node->stderr_text, qr/expansion.*failed/i, 'no failed table expansion');
ok($node->alive, 'node alive');

done_testing;
