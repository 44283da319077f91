#!/usr/bin/perl
# Every mutation made through a meta command replicates exactly like its
# text twin (issue 4, item 3): same value, flags and CAS unique on both
# nodes, in both directions -- ms in every mode (and quiet, with C, E, I,
# base64 keys), md (and md I / md x, which keep a new version), ma (and
# the key it vivifies), mg's T and N.  The peer is read with gets.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

my ($a, $b) = start_pair();
my %sock = (a => $a->new_sock, b => $b->new_sock);

for my $dir (['a', 'b'], ['b', 'a']) {
    my ($from, $to) = map { $sock{$_} } @$dir;
    my $p = "$dir->[0]2$dir->[1]";

    # ---- ms ----
    cmd_is($from, "ms $p:s 5 F5\r\nhello\r\n", "HD\r\n");
    wait_same($from, $to, "$p:s", "ms $p");
    is(kv_on($to, "$p:s"), 'hello', "ms $p: value");
    cmd_is($from, "ms $p:s 3 MR F9\r\nnew\r\n", "HD\r\n");
    wait_value($to, "$p:s", 'new', "ms MR $p");
    wait_same($from, $to, "$p:s", "ms MR $p: flags and cas");
    cmd_is($from, "ms $p:s 4 MA\r\n-end\r\n", "HD\r\n");
    wait_value($to, "$p:s", 'new-end', "ms MA $p");
    cmd_is($from, "ms $p:s 6 MP\r\nstart-\r\n", "HD\r\n");
    wait_value($to, "$p:s", 'start-new-end', "ms MP $p");
    cmd_is($from, "ms $p:add 1 ME\r\n1\r\n", "HD\r\n");
    wait_value($to, "$p:add", '1', "ms ME $p");
    cmd_is($from, "ms $p:q 2 q\r\nqq\r\nmn\r\n", "MN\r\n");
    wait_value($to, "$p:q", 'qq', "quiet ms $p");
    my $cas = meta_cas($from, "$p:s");
    cmd_is($from, "ms $p:s 3 C$cas\r\ncas\r\n", "HD\r\n");
    wait_value($to, "$p:s", 'cas', "ms C $p");
    wait_same($from, $to, "$p:s");
    cmd_is($from, "ms $p:e 1 E424242\r\ne\r\n", "HD\r\n");
    wait_same($from, $to, "$p:e", "ms E $p");
    is(meta_cas($to, "$p:e"), 424242, "ms E $p: the explicit CAS on the peer");
    cmd_is($from, "ms $p:viv 3 MA N100\r\nviv\r\n", "HD\r\n");
    wait_value($to, "$p:viv", 'viv', "ms MA N (vivified append) $p");
    # T: the TTL travels with the item (read back with mg t; a TTL long
    # enough that a slow machine can't see it expire before the check),
    # and a short one expires on the peer as well.
    cmd_is($from, "ms $p:t 1 T300\r\nt\r\n", "HD\r\n");
    wait_value($to, "$p:t", 't', "ms T $p");
    peer_has_ttl_300($to, "$p:t", "ms T $p: the peer has the TTL");
    cmd_is($from, "ms $p:t1 1 T1\r\nt\r\n", "HD\r\n");
    wait_value($to, "$p:t1", undef, "ms T $p: a short TTL expires on the peer");

    # ---- ms I: a stale value is a write like any other ----
    cmd_is($from, "set $p:inv 0 0 2\r\nv1\r\n", "STORED\r\n");
    cmd_is($from, "set $p:inv 0 0 2\r\nv2\r\n", "STORED\r\n");
    $cas = meta_cas($from, "$p:inv");
    cmd_is($from, "ms $p:inv 2 I C" . ($cas - 1) . "\r\nv0\r\n", "HD\r\n");
    wait_value($to, "$p:inv", 'v0', "ms I $p");
    wait_same($from, $to, "$p:inv");

    # ---- md ----
    cmd_is($from, "md $p:add\r\n", "HD\r\n");
    wait_value($to, "$p:add", undef, "md $p");
    cmd_is($from, "md $p:q q\r\nmn\r\n", "MN\r\n");
    wait_value($to, "$p:q", undef, "quiet md $p");
    cmd_is($from, "set $p:mi 3 0 2\r\nmi\r\n", "STORED\r\n");
    wait_value($to, "$p:mi", 'mi', "set before md I $p");
    my $before = meta_cas($from, "$p:mi");
    cmd_is($from, "md $p:mi I\r\n", "HD\r\n");
    wait_same($from, $to, "$p:mi", "md I $p: the new CAS on the peer");
    isnt(meta_cas($to, "$p:mi"), $before, "md I $p: the CAS moved");
    cmd_is($from, "md $p:mi I T1\r\n", "HD\r\n");
    wait_value($to, "$p:mi", undef, "md I T $p: the new TTL expires on the peer");
    cmd_is($from, "set $p:mx 3 0 5\r\nvalue\r\n", "STORED\r\n");
    wait_value($to, "$p:mx", 'value', "set before md x $p");
    cmd_is($from, "md $p:mx x\r\n", "HD\r\n");
    wait_value($to, "$p:mx", '', "md x $p: emptied on the peer");
    wait_same($from, $to, "$p:mx");

    # ---- ma ----
    cmd_is($from, "set $p:n 0 0 2\r\n10\r\n", "STORED\r\n");
    cmd_is($from, "ma $p:n D5 v\r\n", "VA 2\r\n15\r\n");
    wait_value($to, "$p:n", '15', "ma $p");
    cmd_is($from, "ma $p:n MD D3 v\r\n", "VA 2\r\n12\r\n");
    wait_value($to, "$p:n", '12', "ma MD $p");
    wait_same($from, $to, "$p:n");
    cmd_is($from, "ma $p:n q\r\nmn\r\n", "MN\r\n");
    wait_value($to, "$p:n", '13', "quiet ma $p");
    cmd_is($from, "ma $p:nv N0 J100 v\r\n", "VA 3\r\n100\r\n");
    wait_value($to, "$p:nv", '100', "ma N $p: the vivified key");
    wait_same($from, $to, "$p:nv");
    cmd_is($from, "ma $p:nv E777\r\n", "HD\r\n");
    wait_same($from, $to, "$p:nv", "ma E $p");
    is(meta_cas($to, "$p:nv"), 777, "ma E $p: the explicit CAS on the peer");
    cmd_is($from, "ma $p:nv T1\r\n", "HD\r\n");
    wait_value($to, "$p:nv", undef, "ma T $p: expires on the peer");

    # ---- mg: T moves the expiry, N creates a stub ----
    cmd_is($from, "set $p:g 0 0 1\r\ng\r\n", "STORED\r\n");
    wait_value($to, "$p:g", 'g', "set before mg T $p");
    cmd_is($from, "mg $p:g T1 v\r\n", "VA 1\r\ng\r\n");
    wait_value($to, "$p:g", undef, "mg T $p: expires on the peer");
    cmd_is($from, "mg $p:stub N30\r\n", "HD W\r\n");
    wait_value($to, "$p:stub", '', "mg N $p: the stub reaches the peer");
    wait_same($from, $to, "$p:stub");
}

# A base64 key stores under the decoded bytes on both nodes.
cmd_is($sock{a}, "ms YukB 3 b\r\nbin\r\n", "HD\r\n");
wait_value($sock{b}, "b\xe9\x01", 'bin', 'ms with a base64 key');
cmd_is($sock{b}, "md YukB b\r\n", "HD\r\n");
wait_value($sock{a}, "b\xe9\x01", undef, 'md with a base64 key');

# Any bytes in a key, spaces and line ends too, replicate (read with mg b).
cmd_is($sock{a}, "ms YSBiDQpjAA== 2 b\r\nsp\r\n", "HD\r\n");
ok(wait_until(sub {
       send_bytes($sock{b}, "mg YSBiDQpjAA== b v\r\n");
       my $l = read_line($sock{b}) // '';
       return 0 unless $l eq "VA 2\r\n";
       return read_line($sock{b}) eq "sp\r\n";
   }, $ReplTest::DEADLINE, 0.05), 'a key with a space, CR LF and NUL replicates');

# Meta writes on both nodes at once converge.
for my $i (1 .. 50) {
    send_bytes($sock{a}, "ms race$i 1 q\r\na\r\n");
    send_bytes($sock{b}, "ms race$i 1 q\r\nb\r\n");
}
cmd_is($sock{a}, "mn\r\n", "MN\r\n");
cmd_is($sock{b}, "mn\r\n", "MN\r\n");
my $same = 0;
$same += wait_same($sock{a}, $sock{b}, "race$_", "race$_") ? 1 : 0 for 1 .. 50;
is($same, 50, 'concurrent ms on both nodes converge');

done_testing;
