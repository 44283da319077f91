#!/usr/bin/perl
# Every mutation made through the binary protocol replicates exactly like
# its text twin (issue 4, item 3): same value, flags and CAS unique on both
# nodes, in both directions -- set/add/replace/append/prepend and their
# quiet forms, CAS stores, incr/decr (also seeding a missing key), delete,
# touch/gat expiry, flush.  The peer is read over the text protocol.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use BinProto;

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

my ($a, $b) = start_pair();
my %bin = (a => $a->new_sock, b => $b->new_sock);
my %txt = (a => $a->new_sock, b => $b->new_sock);

# A request that must succeed (quiet ones are followed by a noop).
sub bin_ok {
    my ($sock, $pkt, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($op) = unpack('xC', $pkt);
    my $quiet = grep { $op == $OP{$_} } qw(setq addq replaceq appendq prependq deleteq incrq decrq flushq);
    send_bytes($sock, $pkt . ($quiet ? bin_req('noop') : ''));
    my $r = bin_read($sock);
    ok($r && $r->{status} == 0 && $r->{opcode} == ($quiet ? $OP{noop} : $op), $name)
        or diag($r ? "status $r->{status}: $r->{value}" : 'no answer');
    return $r;
}

for my $dir (['a', 'b'], ['b', 'a']) {
    my ($from, $fromt, $to) = ($bin{ $dir->[0] }, $txt{ $dir->[0] }, $txt{ $dir->[1] });
    my $p = "$dir->[0]2$dir->[1]";

    bin_ok($from, bin_req('set', key => "$p:set", value => 'hello', extras => ext_store(5, 0)), "set $p");
    wait_same($fromt, $to, "$p:set", "set $p: same value, flags, CAS");
    is(kv_on($to, "$p:set"), 'hello', "set $p: value");

    bin_ok($from, bin_req('setq', key => "$p:setq", value => 'quiet', extras => ext_store(1, 0)), "setq $p");
    wait_value($to, "$p:setq", 'quiet', "setq $p");

    bin_ok($from, bin_req('add', key => "$p:add", value => 'new', extras => ext_store(7, 0)), "add $p");
    wait_value($to, "$p:add", 'new', "add $p");
    bin_ok($from, bin_req('addq', key => "$p:addq", value => 'newq', extras => ext_store(7, 0)), "addq $p");
    wait_value($to, "$p:addq", 'newq', "addq $p");

    bin_ok($from, bin_req('replace', key => "$p:set", value => 'replaced', extras => ext_store(9, 0)), "replace $p");
    wait_value($to, "$p:set", 'replaced', "replace $p");
    wait_same($fromt, $to, "$p:set", "replace $p keeps flags and CAS equal");
    bin_ok($from, bin_req('replaceq', key => "$p:setq", value => 'quiet2', extras => ext_store(1, 0)), "replaceq $p");
    wait_value($to, "$p:setq", 'quiet2', "replaceq $p");

    bin_ok($from, bin_req('append', key => "$p:set", value => '-end'), "append $p");
    wait_value($to, "$p:set", 'replaced-end', "append $p");
    bin_ok($from, bin_req('prepend', key => "$p:set", value => 'start-'), "prepend $p");
    wait_value($to, "$p:set", 'start-replaced-end', "prepend $p");
    bin_ok($from, bin_req('appendq', key => "$p:set", value => '!'), "appendq $p");
    bin_ok($from, bin_req('prependq', key => "$p:set", value => '!'), "prependq $p");
    wait_value($to, "$p:set", '!start-replaced-end!', "appendq/prependq $p");
    wait_same($fromt, $to, "$p:set");

    my $cas = bin_get($from, "$p:set")->{cas};
    bin_ok($from, bin_req('set', key => "$p:set", value => 'cas', extras => ext_store(3, 0), cas => $cas), "CAS set $p");
    wait_value($to, "$p:set", 'cas', "CAS set $p");
    wait_same($fromt, $to, "$p:set");

    bin_ok($from, bin_req('incr', key => "$p:n", extras => ext_incr(1, 10, 0)), "incr seeding $p");
    wait_value($to, "$p:n", '10', "a counter seeded by incr $p");
    bin_ok($from, bin_req('incr', key => "$p:n", extras => ext_incr(5, 0, 0)), "incr $p");
    wait_value($to, "$p:n", '15', "incr $p");
    bin_ok($from, bin_req('decrq', key => "$p:n", extras => ext_incr(3, 0, 0)), "decrq $p");
    wait_value($to, "$p:n", '12', "decrq $p");
    wait_same($fromt, $to, "$p:n", "incr/decr $p: same CAS");

    bin_ok($from, bin_req('delete', key => "$p:add"), "delete $p");
    wait_value($to, "$p:add", undef, "delete $p");
    bin_ok($from, bin_req('deleteq', key => "$p:addq"), "deleteq $p");
    wait_value($to, "$p:addq", undef, "deleteq $p");

    # touch and gat move the expiry: a short one makes the key vanish on
    # the peer too.
    bin_ok($from, bin_req('set', key => "$p:t", value => 't', extras => ext_store(0, 0)), "set before touch $p");
    wait_value($to, "$p:t", 't', "set before touch $p");
    bin_ok($from, bin_req('touch', key => "$p:t", extras => ext_exp(1)), "touch $p");
    wait_value($to, "$p:t", undef, "touch $p: expires on the peer");
    bin_ok($from, bin_req('set', key => "$p:g", value => 'g', extras => ext_store(0, 0)), "set before gat $p");
    wait_value($to, "$p:g", 'g', "set before gat $p");
    bin_ok($from, bin_req('gatk', key => "$p:g", extras => ext_exp(1)), "gatk $p");
    wait_value($to, "$p:g", undef, "gatk $p: expires on the peer");

    # Expiry travels as an absolute time, also for a seeded counter: read
    # back on the peer with mg t (a TTL long enough that a slow machine
    # can't see it expire before the check), and a short one expires on
    # the peer as well.
    bin_ok($from, bin_req('incr', key => "$p:ce", extras => ext_incr(1, 4, 300)), "incr seeding with expiry $p");
    wait_value($to, "$p:ce", '4', "seeded counter $p");
    peer_has_ttl_300($to, "$p:ce", "seeded counter $p: the peer has the TTL");
    bin_ok($from, bin_req('incr', key => "$p:ce1", extras => ext_incr(1, 4, 1)), "incr seeding with a short expiry $p");
    wait_value($to, "$p:ce1", undef, "and it expires on the peer as well");
}

# A CAS from one node is good on the other.
bin_ok($bin{a}, bin_req('set', key => 'xcas', value => '1', extras => ext_store(0, 0)), 'set xcas on A');
wait_same($txt{a}, $txt{b}, 'xcas');
my $cas = bin_get($bin{a}, 'xcas')->{cas};
bin_ok($bin{b}, bin_req('set', key => 'xcas', value => '2', extras => ext_store(0, 0), cas => $cas),
       'CAS set on B with the unique from A');
wait_value($txt{a}, 'xcas', '2', 'that CAS set reached A');
bin_is($bin{a}, bin_req('set', key => 'xcas', value => '3', extras => ext_store(0, 0), cas => $cas),
       res_pkt('set', 'eexists'), 'the old unique is stale on A now');

# flush and flushq.
bin_ok($bin{a}, bin_req('set', key => 'f1', value => '1', extras => ext_store(0, 0)), 'set f1');
wait_value($txt{b}, 'f1', '1');
bin_ok($bin{b}, bin_req('flush'), 'flush on B');
wait_value($txt{a}, 'f1', undef, 'flush on B empties A');
bin_ok($bin{b}, bin_req('set', key => 'f2', value => '2', extras => ext_store(0, 0)), 'set f2');
wait_value($txt{a}, 'f2', '2', 'writes after the flush replicate');
bin_ok($bin{a}, bin_req('flushq'), 'flushq on A');
wait_value($txt{b}, 'f2', undef, 'flushq on A empties B');

my $st = stats($txt{a});
ok($st->{repl_items_sent} > 0 && $st->{repl_items_received} > 0, 'items counted both ways');

done_testing;
