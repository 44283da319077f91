#!/usr/bin/perl
# -M: a full cache refuses new items with "SERVER_ERROR out of memory
# storing object" instead of evicting; existing items stay readable and
# freed memory can be reused.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server('-m 2 -M');
my $sock = $srv->new_sock;
is(stats($sock, 'settings')->{evictions}, 'off', 'stats settings: evictions off');

my $val = 'm' x 50_000;
my ($first_fail, @stored);
for my $i (0 .. 199) {
    my $r = mem_set($sock, "k$i", $val) // '<none>';
    if ($r eq 'STORED') {
        push @stored, $i;
    } else {
        $first_fail //= $i;
        is($r, 'SERVER_ERROR out of memory storing object', "set k$i refused with the out-of-memory line")
            unless $i > $first_fail + 2;
    }
}
ok(defined $first_fail, "the cache filled up after " . scalar(@stored) . " items");
cmp_ok(scalar(@stored), '>', 10, 'a fair number of items fit first');

my $h = mem_get_multi($sock, [map { "k$_" } @stored]);
is(scalar(keys %$h), scalar(@stored), 'every stored item is still there: nothing was evicted');
my $st = stats($sock);
is($st->{evictions}, 0, 'evictions stays 0');
cmp_ok($st->{store_no_memory} // 0, '>=', 1, 'store_no_memory counts the refusals')
    if exists $st->{store_no_memory};
my $items = stats($sock, 'items');
ok((grep { /^items:\d+:outofmemory$/ && $items->{$_} > 0 } keys %$items),
   'stats items shows outofmemory in the class');

# The stream is still in step after a refusal with data.
cmd_is($sock, "set over 0 0 50000\r\n$val\r\nget k0\r\n",
       "SERVER_ERROR out of memory storing object\r\nVALUE k0 0 50000\r\n$val\r\nEND\r\n",
       'refused data was swallowed and the next command answered');
cmd_is($sock, "set over 0 0 50000 noreply\r\n$val\r\nversion\r\n", "VERSION " . expected_version() . "\r\n",
       'with noreply the refusal is silent');

# Deleting frees room for a new item of that size.
cmd_is($sock, "delete k0\r\n", "DELETED\r\n");
cmd_is($sock, "set again 0 0 50000\r\n$val\r\n", "STORED\r\n", 'a delete makes room again');

# Small items of a new size class may also be refused, but never evict.
my %ans;
$ans{ mem_set($sock, "small$_", 'y' x 100) // '<none>' }++ for 1 .. 100;
ok(!grep({ $_ ne 'STORED' && $_ ne 'SERVER_ERROR out of memory storing object' } keys %ans),
   'small items: STORED or the out-of-memory line') or diag(explain(\%ans));
is(stats($sock)->{evictions}, 0, 'still no evictions');

done_testing;
