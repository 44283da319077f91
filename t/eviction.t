#!/usr/bin/perl
# With a small -m the cache evicts: the least recently used items go first,
# an item that keeps being read survives, "evictions" counts, and memory
# stays within the limit.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server('-m 2');
my $sock = $srv->new_sock;

my $val = 'e' x 50_000;
my $n = 200;    # about 10 MB through a 2 MB cache
my $errors = 0;
for my $i (0 .. $n - 1) {
    $errors++ unless (mem_set($sock, "k$i", $val) // '') eq 'STORED';
    # k0 is read now and then, so it stays recently used.
    if ($i % 5 == 0) {
        mem_get_multi($sock, ['k0']) for 1 .. 2;
    }
}
is($errors, 0, "all $n sets answered STORED");

my @present = grep { my $h = mem_get_multi($sock, ["k$_"]); $h && $h->{"k$_"} } 0 .. $n - 1;
my %present = map { $_ => 1 } @present;
ok($present{ $n - 1 }, 'the newest item is present');
ok($present{0}, 'the item read all along survived');
ok(!$present{1} && !$present{2}, 'the oldest unread items were evicted');
cmp_ok(scalar(@present), '<', $n / 2, 'most items were evicted (' . scalar(@present) . " of $n left)");
cmp_ok(scalar(@present), '>', 10, 'the cache still holds a fair number of items');
my @holes = grep { !$present{$_} } (($present[1] // 1) .. $n - 1);
is(scalar(@holes), 0, 'what survived is the most recent run of keys');

my $st = stats($sock);
cmp_ok($st->{evictions}, '>=', $n - scalar(@present), 'evictions counts every evicted item');
is($st->{curr_items}, scalar(@present), 'curr_items matches what is left');
cmp_ok($st->{bytes}, '<=', $st->{limit_maxbytes}, 'bytes stays within limit_maxbytes');
is($st->{limit_maxbytes}, 2 * 1024 * 1024, 'limit_maxbytes is -m in bytes');
is(stats($sock, 'settings')->{evictions}, 'on', 'stats settings: evictions on');
my $items = stats($sock, 'items');
my ($evicted) = grep { /^items:\d+:evicted$/ && $items->{$_} > 0 } keys %$items;
ok($evicted, 'stats items shows evictions in the class') or diag(explain($items));

# Items of other sizes can still be stored (memory moves between classes
# or is evicted from them).
my $small_ok = 0;
for my $i (1 .. 2000) {
    $small_ok++ if (mem_set($sock, "s$i", 'x' x 100) // '') eq 'STORED';
}
is($small_ok, 2000, 'small items still store in a full cache');
mem_get_is($sock, 's2000', 'x' x 100);

done_testing;
