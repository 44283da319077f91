#!/usr/bin/perl
# Numbers a replication peer sends are not trusted blindly (both found by
# fuzz/fuzz_repl.c):
#  1. SYNC_BEGIN's item count only sizes the hash table up to what -m can
#     hold: a count of 2^40 once asked for a 2^32-bucket (32 GB) table, and
#     the failed allocation stopped the table from ever growing again.
#  2. A version far in the future (in a HELLO or an ITEM) closes the link
#     and is not folded into the clock: 0xffffffffffffff00 once pushed the
#     clock to the end of its 64 bits, and the next local write's version
#     (its CAS unique) wrapped around to a smaller one.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use IO::Socket::INET;
use Time::HiRes qw(time);
no warnings qw(portable);   # 64-bit hex constants

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

sub item {
    my ($version, $key, $value) = @_;
    return frame(2, pack('Q> Q> N q> C C N', $version, $version, 0, 0, length $key, 0,
                         length $value) . $key . $value);
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

# 2. Versions from the far future.
cmd_is($s, "set before 0 0 1\r\na\r\n", "STORED\r\n", 'a local write');
my $cas_before = meta_cas($s, 'before');
as_peer(hello(0x2222, version_now()) . item(0xffffffffffffff00, 'far', 'x'), 1,
        'ITEM with version 0xffffffffffffff00');
as_peer(hello(0x3333, 0xfffffffffffffe00), 1, 'HELLO with clock 0xfffffffffffffe00');
mem_get_is($s, 'far', undef, name => 'the far-future item was not applied');
like($node->stderr_text, qr/ahead of our clock/, 'the reason is logged');
cmd_is($s, "set after1 0 0 1\r\nb\r\n", "STORED\r\n", 'local write after');
cmd_is($s, "set after2 0 0 1\r\nc\r\n", "STORED\r\n", 'another local write');
my ($cas1, $cas2) = (meta_cas($s, 'after1'), meta_cas($s, 'after2'));
ok($cas_before < $cas1 && $cas1 < $cas2, 'CAS uniques (versions) keep increasing')
    or diag("cas: $cas_before, $cas1, $cas2");
ok($cas2 < (1 << 63), 'the clock was not pushed to the end of its range')
    or diag("cas: $cas2");

# A peer with a sane clock still links up and replicates.
my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport") or die "connect: $!";
send_bytes($c, hello(0x4444, version_now()) . item(version_now() + (1000 << 20), 'near', 'y'));
ok(wait_until(sub { my $h = mem_get_multi($s, ['near']); $h && $h->{near} }, 5 * timeout_scale(), 0.05),
   'an item from a sane peer is applied');
close($c);
ok($node->alive, 'node alive');

done_testing;
