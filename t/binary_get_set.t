#!/usr/bin/perl
# Binary protocol: get/getq/getk/getkq, set/add/replace, append/prepend
# and their quiet forms, with CAS, flags, expiry, large and empty values,
# and pipelined quiet multi-gets; memcached 1.6's exact answers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use MemcachedTest;
use BinProto;

my $srv = start_server();
my $s = $srv->new_sock;
my $F = pack('N', 0xdeadbeef);

# ---- set and the four gets ----
my ($r) = bin_is($s, bin_req('set', key => 'foo', value => 'bar', extras => ext_store(0xdeadbeef, 0), opaque => 7),
                 res_pkt('set', 'ok', opaque => 7, cas => 'any'), 'set answers its CAS');
my $cas = $r->{cas};
bin_is($s, bin_req('get', key => 'foo', opaque => 8),
       res_pkt('get', 'ok', opaque => 8, extras => $F, value => 'bar', cas => $cas), 'get: flags, value, CAS');
bin_is($s, bin_req('getk', key => 'foo', opaque => 9),
       res_pkt('getk', 'ok', opaque => 9, extras => $F, key => 'foo', value => 'bar', cas => $cas), 'getk adds the key');
bin_is($s, bin_req('getq', key => 'foo', opaque => 10),
       res_pkt('getq', 'ok', opaque => 10, extras => $F, value => 'bar', cas => $cas), 'getq hit answers');
bin_is($s, bin_req('getkq', key => 'foo', opaque => 11),
       res_pkt('getkq', 'ok', opaque => 11, extras => $F, key => 'foo', value => 'bar', cas => $cas), 'getkq hit answers');
bin_is($s, bin_req('get', key => 'nokey', opaque => 12), res_pkt('get', 'enoent', opaque => 12), 'get miss: Not found');
bin_is($s, bin_req('getk', key => 'nokey', opaque => 13),
       res_pkt('getk', 'enoent', opaque => 13, key => 'nokey'), 'getk miss: the key, no message');
bin_is($s, bin_req('getq', key => 'nokey') . bin_req('getkq', key => 'nokey') . bin_req('noop', opaque => 14),
       res_pkt('noop', 'ok', opaque => 14), 'getq/getkq miss: silent');
bin_is($s, bin_req('get', key => 'foo', cas => 12345),
       res_pkt('get', 'ok', extras => $F, value => 'bar', cas => $cas), 'a CAS in a get is ignored');

# A multi-get the way clients do it: getkq ... then noop.
for my $i (1 .. 5) {
    bin_set($s, "m$i", "value$i", flags => $i);
}
my $batch = join('', map { bin_req('getkq', key => "m$_", opaque => $_) } 1 .. 6) . bin_req('noop', opaque => 99);
bin_is($s, $batch,
       [(map { res_pkt('getkq', 'ok', opaque => $_, extras => pack('N', $_), key => "m$_",
                       value => "value$_", cas => 'any') } 1 .. 5),
        res_pkt('noop', 'ok', opaque => 99)], 'pipelined getkq + noop: hits only, in order');

# A pipeline whose answers are far larger than the output bound: written
# as the client reads, complete and in order.
my $v200k = join('', map { chr(65 + $_ % 26) } 1 .. 200_000);
bin_set($s, 'stream', $v200k);
send_bytes($s, join('', map { bin_req('getkq', key => 'stream', opaque => $_) } 1 .. 100)
               . bin_req('noop', opaque => 1000));
sleep 0.5;
my $streamed = 0;
for my $i (1 .. 100) {
    my $p = bin_read($s);
    $streamed++ if $p && $p->{opaque} == $i && $p->{value} eq $v200k;
}
is($streamed, 100, '100 pipelined getkq of 200 KB each');
bin_is($s, '', res_pkt('noop', 'ok', opaque => 1000), 'then the noop');

# ---- add, replace, set with CAS ----
bin_is($s, bin_req('add', key => 'a', value => 'v1', extras => ext_store(1, 0), opaque => 1),
       res_pkt('add', 'ok', opaque => 1, cas => 'any'), 'add a new key');
bin_is($s, bin_req('add', key => 'a', value => 'v2', extras => ext_store(1, 0), opaque => 2),
       res_pkt('add', 'eexists', opaque => 2), 'add an existing key: Data exists');
bin_is($s, bin_req('replace', key => 'nx', value => 'v', extras => ext_store(1, 0), opaque => 3),
       res_pkt('replace', 'enoent', opaque => 3), 'replace a missing key: Not found');
($r) = bin_is($s, bin_req('replace', key => 'a', value => 'v3', extras => ext_store(2, 0)),
              res_pkt('replace', 'ok', cas => 'any'), 'replace an existing key');
$cas = $r->{cas};
bin_is($s, bin_req('set', key => 'a', value => 'x', extras => ext_store(0, 0), cas => $cas + 1000),
       res_pkt('set', 'eexists'), 'set with a stale CAS: Data exists');
bin_is($s, bin_req('set', key => 'zz', value => 'x', extras => ext_store(0, 0), cas => 12345),
       res_pkt('set', 'enoent'), 'set with a CAS on a missing key: Not found');
($r) = bin_is($s, bin_req('set', key => 'a', value => 'v4', extras => ext_store(4, 0), cas => $cas),
              res_pkt('set', 'ok', cas => 'any'), 'set with the right CAS');
isnt($r->{cas}, $cas, 'the CAS changed');
$cas = $r->{cas};
bin_is($s, bin_req('add', key => 'a', value => 'x', extras => ext_store(0, 0), cas => $cas + 1000),
       res_pkt('add', 'eexists'), 'add with a stale CAS: Data exists');
bin_is($s, bin_req('add', key => 'nx', value => 'x', extras => ext_store(0, 0), cas => 5),
       res_pkt('add', 'enoent'), 'add with a CAS on a missing key: Not found (a CAS store)');
($r) = bin_is($s, bin_req('add', key => 'a', value => 'v5', extras => ext_store(5, 0), cas => $cas),
              res_pkt('add', 'ok', cas => 'any'), 'add with the right CAS stores (a CAS store)');
$cas = $r->{cas};
bin_is($s, bin_req('replace', key => 'a', value => 'x', extras => ext_store(0, 0), cas => $cas + 1000),
       res_pkt('replace', 'eexists'), 'replace with a stale CAS: Data exists');
bin_is($s, bin_req('get', key => 'a'),
       res_pkt('get', 'ok', extras => pack('N', 5), value => 'v5', cas => $cas), 'the value of the last good store');

# ---- append, prepend ----
($r) = bin_is($s, bin_req('append', key => 'a', value => 'APP'), res_pkt('append', 'ok', cas => 'any'), 'append');
bin_is($s, bin_req('prepend', key => 'a', value => 'PRE'), res_pkt('prepend', 'ok', cas => 'any'), 'prepend');
bin_is($s, bin_req('append', key => 'nx', value => 'APP'), res_pkt('append', 'not_stored'), 'append to a missing key: Not stored');
bin_is($s, bin_req('prepend', key => 'nx', value => 'APP'), res_pkt('prepend', 'not_stored'), 'prepend to a missing key: Not stored');
($r) = bin_is($s, bin_req('get', key => 'a'),
              res_pkt('get', 'ok', extras => pack('N', 5), value => 'PREv5APP', cas => 'any'),
              'append/prepend keep the flags');
$cas = $r->{cas};
bin_is($s, bin_req('append', key => 'a', value => '!', cas => $cas + 1000), res_pkt('append', 'eexists'),
       'append with a stale CAS: Data exists');
bin_is($s, bin_req('append', key => 'a', value => '!', cas => $cas), res_pkt('append', 'ok', cas => 'any'),
       'append with the right CAS');
bin_is($s, bin_req('append', key => 'a', value => ''), res_pkt('append', 'ok', cas => 'any'), 'append of nothing');

# ---- quiet stores: silence on success, the error otherwise ----
bin_is($s, bin_req('setq', key => 'q', value => 'v', extras => ext_store(0, 0))
           . bin_req('addq', key => 'q2', value => 'v', extras => ext_store(0, 0))
           . bin_req('replaceq', key => 'q', value => 'w', extras => ext_store(0, 0))
           . bin_req('appendq', key => 'q', value => 'x')
           . bin_req('prependq', key => 'q', value => 'y')
           . bin_req('noop', opaque => 1),
       res_pkt('noop', 'ok', opaque => 1), 'successful quiet stores answer nothing');
bin_is($s, bin_req('getk', key => 'q'), res_pkt('getk', 'ok', extras => pack('N', 0), key => 'q', value => 'ywx', cas => 'any'),
       'and they were done');
bin_is($s, bin_req('addq', key => 'q', value => 'v', extras => ext_store(0, 0), opaque => 1)
           . bin_req('replaceq', key => 'nx', value => 'v', extras => ext_store(0, 0), opaque => 2)
           . bin_req('appendq', key => 'nx', value => 'v', opaque => 3)
           . bin_req('prependq', key => 'nx', value => 'v', opaque => 4)
           . bin_req('setq', key => 'q', value => 'v', extras => ext_store(0, 0), cas => 1, opaque => 5)
           . bin_req('noop', opaque => 6),
       [res_pkt('addq', 'eexists', opaque => 1), res_pkt('replaceq', 'enoent', opaque => 2),
        res_pkt('appendq', 'not_stored', opaque => 3), res_pkt('prependq', 'not_stored', opaque => 4),
        res_pkt('setq', 'eexists', opaque => 5), res_pkt('noop', 'ok', opaque => 6)],
       'failed quiet stores answer their error');

# ---- values: empty, binary, large; flags and expiry ----
bin_is($s, bin_req('set', key => 'empty', value => '', extras => ext_store(0, 0)), res_pkt('set', 'ok', cas => 'any'), 'empty value');
bin_is($s, bin_req('get', key => 'empty'), res_pkt('get', 'ok', extras => pack('N', 0), value => '', cas => 'any'), 'empty value read back');
my $bin = join('', map { chr } 0 .. 255) x 3 . "\r\n";
bin_set($s, "bin\x01key", $bin, flags => 0xffffffff);
bin_is($s, bin_req('getk', key => "bin\x01key"),
       res_pkt('getk', 'ok', extras => pack('N', 0xffffffff), key => "bin\x01key", value => $bin, cas => 'any'),
       'binary key and value, all flag bits');
my $big = 'x' x (1024 * 1024 - 512);
bin_is($s, bin_req('set', key => 'big', value => $big, extras => ext_store(0, 0)), res_pkt('set', 'ok', cas => 'any'), 'value near 1 MB');
bin_is($s, bin_req('get', key => 'big'), res_pkt('get', 'ok', extras => pack('N', 0), value => $big, cas => 'any'), 'read back');
my $k250 = 'k' x 250;
bin_is($s, bin_req('set', key => $k250, value => 'v', extras => ext_store(0, 0)), res_pkt('set', 'ok', cas => 'any'), '250-byte key');
bin_is($s, bin_req('getk', key => $k250), res_pkt('getk', 'ok', extras => pack('N', 0), key => $k250, value => 'v', cas => 'any'),
       '250-byte key read back');

# (Expiry 3: at least 2 s on the server's whole-second clock, so the item
# is surely there for the first get; 1 could expire at the next step.)
bin_set($s, 'exp', 'e', exptime => 3);
bin_is($s, bin_req('get', key => 'exp'), res_pkt('get', 'ok', extras => pack('N', 0), value => 'e', cas => 'any'), 'expiring item is there');
ok(wait_until(sub { bin_get($s, 'exp')->{status} == $ST{enoent} }, 6 * timeout_scale(), 0.1),
   'and gone after its expiry');
bin_set($s, 'far', 'f', exptime => 0xffffffff);
bin_is($s, bin_req('get', key => 'far'), res_pkt('get', 'ok', extras => pack('N', 0), value => 'f', cas => 'any'),
       'expiry 0xffffffff is unsigned: far in the future');

# A request split across many writes still works.
my $pkt = bin_req('set', key => 'split', value => 'slow value', extras => ext_store(3, 0), opaque => 77);
for my $i (0 .. length($pkt) - 1) {
    send_bytes($s, substr($pkt, $i, 1));
    sleep 0.002;
}
bin_is($s, '', res_pkt('set', 'ok', opaque => 77, cas => 'any'), 'a set sent byte by byte');
bin_is($s, bin_req('get', key => 'split'), res_pkt('get', 'ok', extras => pack('N', 3), value => 'slow value', cas => 'any'),
       'stored whole');

# Text and binary clients share the data.
my $t = $srv->new_sock;
mem_get_is($t, 'split', 'slow value', flags => 3);
cmd_is($t, "set fromtext 9 0 2\r\nhi\r\n", "STORED\r\n");
bin_is($s, bin_req('get', key => 'fromtext'), res_pkt('get', 'ok', extras => pack('N', 9), value => 'hi', cas => 'any'),
       'a text set read over binary');

# The get counters move as for text gets.
my $st = stats($t);
cmp_ok($st->{get_hits}, '>=', 10, 'get_hits counted');
cmp_ok($st->{get_misses}, '>=', 4, 'get_misses counted');

done_testing;
