#!/usr/bin/perl
# Every mutating command replicates, in both directions, with the same
# value, flags and CAS unique on both nodes (doc/replication.md section 1).

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use Time::HiRes qw(sleep);

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

my ($a, $b) = start_pair();
my %sock = (a => $a->new_sock, b => $b->new_sock);

for my $dir (['a', 'b'], ['b', 'a']) {
    my ($from, $to) = map { $sock{$_} } @$dir;
    my $p = "$dir->[0]2$dir->[1]";

    cmd_is($from, "set $p:set 5 0 5\r\nhello\r\n", "STORED\r\n");
    wait_same($from, $to, "$p:set", "set $p");
    is(kv_on($to, "$p:set"), 'hello', "set $p: value");

    cmd_is($from, "add $p:add 7 0 3\r\nnew\r\n", "STORED\r\n");
    wait_value($to, "$p:add", 'new', "add $p");

    cmd_is($from, "replace $p:set 9 0 8\r\nreplaced\r\n", "STORED\r\n");
    wait_value($to, "$p:set", 'replaced', "replace $p");
    wait_same($from, $to, "$p:set", "replace $p keeps flags and cas equal");

    cmd_is($from, "append $p:set 0 0 4\r\n-end\r\n", "STORED\r\n");
    wait_value($to, "$p:set", 'replaced-end', "append $p");
    cmd_is($from, "prepend $p:set 0 0 6\r\nstart-\r\n", "STORED\r\n");
    wait_value($to, "$p:set", 'start-replaced-end', "prepend $p");

    my (undef, $cas) = mem_gets($from, "$p:set");
    cmd_is($from, "cas $p:set 3 0 3 $cas\r\ncas\r\n", "STORED\r\n");
    wait_value($to, "$p:set", 'cas', "cas $p");
    wait_same($from, $to, "$p:set");

    cmd_is($from, "set $p:n 0 0 2\r\n10\r\n", "STORED\r\n");
    cmd_is($from, "incr $p:n 5\r\n", "15\r\n");
    wait_value($to, "$p:n", '15', "incr $p");
    cmd_is($from, "decr $p:n 3\r\n", "12\r\n");
    wait_value($to, "$p:n", '12', "decr $p");
    wait_same($from, $to, "$p:n");

    cmd_is($from, "delete $p:add\r\n", "DELETED\r\n");
    wait_value($to, "$p:add", undef, "delete $p");

    # touch and gat move the expiry: a short one makes the key vanish on
    # the peer too.
    cmd_is($from, "set $p:t 0 0 1\r\nt\r\n", "STORED\r\n");
    wait_value($to, "$p:t", 't', "set before touch $p");
    cmd_is($from, "touch $p:t 1\r\n", "TOUCHED\r\n");
    wait_value($to, "$p:t", undef, "touch $p: expires on the peer");
    cmd_is($from, "set $p:g 0 0 1\r\ng\r\n", "STORED\r\n");
    wait_value($to, "$p:g", 'g', "set before gat $p");
    cmd_is($from, "gat 1 $p:g\r\n", "VALUE $p:g 0 1\r\ng\r\nEND\r\n");
    wait_value($to, "$p:g", undef, "gat $p: expires on the peer");
    cmd_is($from, "set $p:gs 0 0 2\r\ngs\r\n", "STORED\r\n");
    wait_value($to, "$p:gs", 'gs', "set before gats $p");
    send_bytes($from, "gats 1 $p:gs\r\n");
    like(read_line($from), qr/^VALUE \Q$p\E:gs 0 2 \d+\r\n\z/, "gats $p answers");
    read_line($from); read_line($from);
    wait_value($to, "$p:gs", undef, "gats $p: expires on the peer");

    # Expiry travels as an absolute time: read back on the peer with mg t
    # (a TTL long enough that a slow machine can't see it expire before
    # the check), and a short one expires on the peer as well.
    cmd_is($from, "set $p:exp 0 300 1\r\ne\r\n", "STORED\r\n");
    wait_value($to, "$p:exp", 'e', "item with exptime $p");
    peer_has_ttl_300($to, "$p:exp", "exptime $p: the peer has the TTL");
    cmd_is($from, "set $p:exp1 0 1 1\r\ne\r\n", "STORED\r\n");
    wait_value($to, "$p:exp1", undef, "exptime $p: a short one expires on the peer as well");
}

# cas across nodes: gets on one node, cas on the other.
cmd_is($sock{a}, "set xcas 0 0 1\r\n1\r\n", "STORED\r\n");
wait_same($sock{a}, $sock{b}, 'xcas');
my (undef, $cas) = mem_gets($sock{a}, 'xcas');
cmd_is($sock{b}, "cas xcas 0 0 1 $cas\r\n2\r\n", "STORED\r\n", 'cas on B with the unique from A');
wait_value($sock{a}, 'xcas', '2', 'that cas reached A');
cmd_is($sock{a}, "cas xcas 0 0 1 $cas\r\n3\r\n", "EXISTS\r\n", 'the old unique is stale on A now');

# flush_all, immediate and delayed.
cmd_is($sock{a}, "set f1 0 0 1\r\n1\r\n", "STORED\r\n");
wait_value($sock{b}, 'f1', '1');
cmd_is($sock{b}, "flush_all\r\n", "OK\r\n");
wait_value($sock{a}, 'f1', undef, 'flush_all on B empties A');
cmd_is($sock{a}, "set f2 0 0 1\r\n2\r\n", "STORED\r\n");
wait_value($sock{b}, 'f2', '2', 'writes after the flush replicate');
# (A delayed flush acts one second early, at the clock's step into its
# last second: a delay of 4 leaves at least 2 s for the first check.)
cmd_is($sock{a}, "flush_all 4\r\n", "OK\r\n");
is(kv_on($sock{b}, 'f2'), '2', 'delayed flush: still there on B right away');
wait_value($sock{b}, 'f2', undef, 'delayed flush_all on A empties B at its time');
# A delayed flush hides what is written in its last second (memcached's
# rule): let that second pass before writing again.
sleep 1.1;

# noreply writes replicate too.
send_bytes($sock{b}, "set quiet 0 0 2 noreply\r\nqq\r\n");
wait_value($sock{a}, 'quiet', 'qq', 'noreply set replicates');

my $st = stats($sock{a});
ok($st->{repl_items_sent} > 0 && $st->{repl_items_received} > 0, 'items counted both ways');
my ($rport) = $a->cmdline =~ /-X (\d+)/;
is($st->{repl_peer}, "127.0.0.1:$rport", 'repl_peer names the peer');
is($st->{repl_state}, 'streaming', 'repl_state');

done_testing;
