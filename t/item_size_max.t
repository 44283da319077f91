#!/usr/bin/perl
# -I: the largest item.  Values just under the limit store and read back
# intact; at and over it "SERVER_ERROR object too large for cache", the
# data is swallowed and the connection stays in step.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes ();
use MemcachedTest;

my $TOO_LARGE = "SERVER_ERROR object too large for cache\r\n";

# Distinct bytes per position so a shifted or truncated value is caught.
sub pattern {
    my ($len) = @_;
    my $unit = join '', map { chr(33 + $_ % 90) } 0 .. 1008;
    return substr($unit x (int($len / length $unit) + 1), 0, $len);
}

# memcached 1.6.18 wants slab_chunk_max <= -I, and corrupts or crashes on
# items chunked at 64 KB or less, hence slab_chunk_max=128 with -I 128k.
my @servers;    # kept running so they stop in parallel at the end
for my $case (['', 1024 * 1024], ['-I 1m', 1024 * 1024], ['-I 2m', 2 * 1024 * 1024],
              ['-I 128k -o slab_chunk_max=128', 128 * 1024], ['-I 5m -m 128', 5 * 1024 * 1024]) {
    my ($args, $max) = @$case;
    my $label = $args || 'default';
    my $srv  = start_server($args);
    push @servers, $srv;
    my $sock = $srv->new_sock;
    is(stats($sock, 'settings')->{item_size_max}, $max, "$label: item_size_max is $max");

    # The item header and key take some room: a value this much under the
    # limit must fit.
    for my $len ($max - 200, $max - 1000, int($max / 2) + 1, 600 * 1024) {
        next if $len >= $max;
        my $v = pattern($len);
        cmd_is($sock, "set big 7 0 $len\r\n$v\r\n", "STORED\r\n", "$label: value of $len bytes stores");
        mem_get_is($sock, 'big', $v, flags => 7, name => "$label: value of $len bytes reads back intact");
    }

    for my $len ($max, $max + 1, 2 * $max) {
        cmd_is($sock, "set big 0 0 $len\r\n" . pattern($len) . "\r\nversion\r\n",
               $TOO_LARGE . "VERSION " . expected_version() . "\r\n",
               "$label: value of $len bytes is too large, its data is swallowed");
    }
    # A failed set removes the old value (no stale data), the other
    # commands leave it.
    cmd_is($sock, "set big 0 0 1\r\nx\r\n", "STORED\r\n");
    for my $cmd (qw(add replace append prepend)) {
        cmd_is($sock, "$cmd big 0 0 $max\r\n" . pattern($max) . "\r\n", $TOO_LARGE,
               "$label: too large $cmd");
        mem_get_is($sock, 'big', 'x', name => "$label: too large $cmd leaves the old value");
    }
    cmd_is($sock, "set big 0 0 $max\r\n" . pattern($max) . "\r\n", $TOO_LARGE, "$label: too large set");
    mem_get_is($sock, 'big', undef, name => "$label: too large set removes the old value");
    my $st = stats($sock);
    cmp_ok($st->{store_too_large}, '>=', 7, "$label: store_too_large counts the refusals")
        if exists $st->{store_too_large};
}

# The data of a too-large value may arrive slowly and in pieces.
my $srv  = start_server('-I 128k -o slab_chunk_max=128');
my $sock = $srv->new_sock;
my $len = 300 * 1024;
send_bytes($sock, "set slow 0 0 $len\r\n");
my $v = pattern($len) . "\r\n";
for (my $off = 0; $off < length $v; $off += 50_000) {
    send_bytes($sock, substr($v, $off, 50_000));
    Time::HiRes::sleep(0.01);
}
cmd_is($sock, "get slow\r\n", $TOO_LARGE . "END\r\n", 'too large value arriving in pieces is swallowed');

# Growing an item past the limit with append is refused.
my $near = pattern(128 * 1024 - 300);
cmd_is($sock, "set grow 0 0 " . length($near) . "\r\n$near\r\n", "STORED\r\n");
cmd_is($sock, "append grow 0 0 1000\r\n" . ('a' x 1000) . "\r\n", "NOT_STORED\r\n",
       'append past the limit is not stored');
mem_get_is($sock, 'grow', $near, name => 'the item is unchanged');

done_testing;
