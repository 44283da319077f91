#!/usr/bin/perl
# Binary protocol: delete, touch/gat/gatq/gatk/gatkq, flush, noop, version,
# quit, stat (every group), verbosity, SASL; quiet forms of each.
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
my $F0 = pack('N', 0);

# ---- delete ----
bin_set($s, 'd', 'x');
bin_is($s, bin_req('delete', key => 'd', opaque => 1), res_pkt('delete', 'ok', opaque => 1), 'delete');
bin_is($s, bin_req('delete', key => 'd', opaque => 2), res_pkt('delete', 'enoent', opaque => 2), 'delete a missing key');
my $r = bin_set($s, 'd', 'x');
bin_is($s, bin_req('delete', key => 'd', cas => $r->{cas} + 1000), res_pkt('delete', 'eexists'), 'delete with a stale CAS');
bin_is($s, bin_req('delete', key => 'd', cas => $r->{cas}), res_pkt('delete', 'ok'), 'delete with the right CAS');
bin_set($s, 'd', 'x');
bin_is($s, bin_req('deleteq', key => 'd') . bin_req('deleteq', key => 'd', opaque => 3) . bin_req('noop', opaque => 4),
       [res_pkt('deleteq', 'enoent', opaque => 3), res_pkt('noop', 'ok', opaque => 4)],
       'deleteq: silent when done, Not found otherwise');

# ---- touch and the gat family ----
bin_set($s, 't', 'tv', flags => 3);
my $F3 = pack('N', 3);
bin_is($s, bin_req('touch', key => 't', extras => ext_exp(100), opaque => 1),
       res_pkt('touch', 'ok', opaque => 1, extras => $F3, cas => 'any'), 'touch answers the flags, no value');
bin_is($s, bin_req('touch', key => 'nx', extras => ext_exp(100)), res_pkt('touch', 'enoent'), 'touch a missing key');
bin_is($s, bin_req('gat', key => 't', extras => ext_exp(100)),
       res_pkt('gat', 'ok', extras => $F3, value => 'tv', cas => 'any'), 'gat');
bin_is($s, bin_req('gat', key => 'nx', extras => ext_exp(100)), res_pkt('gat', 'enoent'), 'gat miss');
bin_is($s, bin_req('gatk', key => 't', extras => ext_exp(100)),
       res_pkt('gatk', 'ok', extras => $F3, key => 't', value => 'tv', cas => 'any'), 'gatk');
bin_is($s, bin_req('gatk', key => 'nx', extras => ext_exp(100)), res_pkt('gatk', 'enoent', key => 'nx'),
       'gatk miss: the key, no message');
bin_is($s, bin_req('gatq', key => 'nx', extras => ext_exp(100))
           . bin_req('gatkq', key => 'nx', extras => ext_exp(100))
           . bin_req('gatq', key => 't', extras => ext_exp(100), opaque => 5)
           . bin_req('gatkq', key => 't', extras => ext_exp(100), opaque => 6)
           . bin_req('noop', opaque => 7),
       [res_pkt('gatq', 'ok', opaque => 5, extras => $F3, value => 'tv', cas => 'any'),
        res_pkt('gatkq', 'ok', opaque => 6, extras => $F3, key => 't', value => 'tv', cas => 'any'),
        res_pkt('noop', 'ok', opaque => 7)], 'gatq/gatkq: hits only');
my $before = bin_get($s, 't')->{cas};
bin_is($s, bin_req('touch', key => 't', extras => ext_exp(1)), res_pkt('touch', 'ok', extras => $F3, cas => $before),
       'touch keeps the CAS');
bin_set($s, 'g', 'gv');
bin_is($s, bin_req('gat', key => 'g', extras => ext_exp(1)), res_pkt('gat', 'ok', extras => $F0, value => 'gv', cas => 'any'),
       'gat with a 1 s expiry');
ok(wait_until(sub { bin_get($s, 't')->{status} == $ST{enoent} }, 5 * timeout_scale(), 0.1),
   'touch set the new expiry');
ok(wait_until(sub { bin_get($s, 'g')->{status} == $ST{enoent} }, 5 * timeout_scale(), 0.1),
   'gat set the new expiry');

# ---- noop, version ----
bin_is($s, bin_req('noop', opaque => 0xfeedface), res_pkt('noop', 'ok', opaque => 0xfeedface), 'noop echoes the opaque');
bin_is($s, bin_req('version', opaque => 9), res_pkt('version', 'ok', opaque => 9, value => expected_version()), 'version');

# ---- flush ----
bin_set($s, 'f', 'x');
bin_is($s, bin_req('flush', opaque => 1), res_pkt('flush', 'ok', opaque => 1), 'flush');
bin_is($s, bin_req('get', key => 'f'), res_pkt('get', 'enoent'), 'flushed');
bin_set($s, 'f', 'x');
bin_is($s, bin_req('flushq') . bin_req('noop'), res_pkt('noop', 'ok'), 'flushq answers nothing');
bin_is($s, bin_req('get', key => 'f'), res_pkt('get', 'enoent'), 'flushed');
sleep 1.1;    # a delayed flush hides what was written in its last second
bin_set($s, 'f', 'x');
# (A delayed flush acts one second early, at the clock's step into its
# last second: a delay of 4 leaves at least 2 s for the "not yet".)
bin_is($s, bin_req('flush', extras => ext_exp(4)), res_pkt('flush', 'ok'), 'flush in 4 s');
bin_is($s, bin_req('get', key => 'f'), res_pkt('get', 'ok', extras => $F0, value => 'x', cas => 'any'), 'not yet');
ok(wait_until(sub { bin_get($s, 'f')->{status} == $ST{enoent} }, 8 * timeout_scale(), 0.1), 'then flushed');
bin_is($s, bin_req('flush', extras => ext_exp(0)), res_pkt('flush', 'ok'), 'flush with expiry 0 is now');

# ---- stat ----
my $t = $srv->new_sock;
sub stat_group {
    my ($key) = @_;
    send_bytes($t, bin_req('stat', key => $key, opaque => 42));
    my (%st, @names);
    while (my $p = bin_read($t)) {
        return { error => $p->{status} } if $p->{status};
        is($p->{opaque}, 42, "stat '$key': opaque echoed") unless @names;
        last if $p->{keylen} == 0 && $p->{bodylen} == 0;
        push @names, $p->{key};
        $st{ $p->{key} } = $p->{value};
    }
    return \%st;
}
my $g = stat_group('');
is($g->{version}, expected_version(), 'stat: general group');
ok(exists $g->{$_}, "stat: $_") for qw(pid uptime curr_items get_hits cmd_get total_connections);
is(stat_group('settings')->{maxconns}, 1024, 'stat settings');
bin_set($s, 'x', 'y');
ok(exists stat_group('items')->{'items:1:number'}, 'stat items');
ok(exists stat_group('slabs')->{active_slabs}, 'stat slabs');
ok(exists stat_group('sizes')->{sizes_status}, 'stat sizes');
is_deeply(stat_group('reset'), {}, 'stat reset: just the end packet');
is(stat_group('')->{get_hits}, 0, 'counters were reset');
is_deeply(stat_group('detail on'), {}, 'stat detail on');
bin_get($s, 'pfx:a');
is(stat_group('detail dump')->{detailed}, "PREFIX pfx get 1 hit 0 set 0 del 0\r\nEND\r\n", 'stat detail dump');
is_deeply(stat_group('detail off'), {}, 'stat detail off');
is_deeply(stat_group($_), { error => $ST{enoent} }, "stat '$_': Not found")
    for ('nosuchgroup', 'detail', 'conns', 'cachedump 1 1');
bin_is($t, bin_req('noop'), res_pkt('noop', 'ok'), 'the connection goes on after a stat error');

# ---- verbosity (memcached 1.6.18 answers "Unknown command" and then
# loses its place in the stream: a deliberate difference) ----
SKIP: {
    skip 'memcached 1.6.18 does not serve binary verbosity', 3 unless is_memcachedrep();
    bin_is($s, bin_req('verbosity', extras => pack('N', 1), opaque => 3),
           res_pkt('verbosity', 'ok', opaque => 3), 'verbosity sets the level');
    is(stat_group('settings')->{verbosity}, 1, 'to 1');
    bin_is($s, bin_req('verbosity', extras => pack('N', 0)), res_pkt('verbosity', 'ok'), 'and back to 0');
}

# ---- SASL, as memcached without SASL answers ----
bin_is($s, bin_req('sasl_list', opaque => 1), res_pkt('sasl_list', 'unknown', opaque => 1), 'SASL list mechs: Unknown command');
bin_is($s, bin_req('sasl_auth', key => 'PLAIN', value => "\0user\0pass", opaque => 2),
       res_pkt('sasl_auth', 'unknown', opaque => 2), 'SASL auth: Unknown command');
bin_is($s, bin_req('sasl_step', key => 'PLAIN', value => 'x' x 5000, opaque => 3),
       res_pkt('sasl_step', 'unknown', opaque => 3), 'SASL step: Unknown command');
bin_is($s, bin_req('noop', opaque => 4), res_pkt('noop', 'ok', opaque => 4), 'their bodies were skipped');

# ---- quit ----
bin_is($s, bin_req('noop', opaque => 1) . bin_req('quit', opaque => 2) . bin_req('noop', opaque => 3),
       [res_pkt('noop', 'ok', opaque => 1), res_pkt('quit', 'ok', opaque => 2)], 'quit answers');
bin_closed($s, 'then closes');
$s = $srv->new_sock;
bin_is($s, bin_req('noop', opaque => 1) . bin_req('quitq', opaque => 2) . bin_req('noop', opaque => 3),
       res_pkt('noop', 'ok', opaque => 1), 'quitq: earlier answers are written');
is(bin_closed($s, 'quitq closes'), '', 'without an answer of its own');

done_testing;
