#!/usr/bin/perl
# Binary protocol: bad frames (wrong magic, body shorter than key + extras,
# long keys, unknown opcodes, extras/key/value not allowed for the opcode,
# oversize values, truncated packets), memory exhaustion, -B auto|ascii|
# binary, and binary over UDP.  Each gets memcached's answer, the
# connection is closed only where memcached closes it, and the server
# never crashes or leaks (the sanitizer build checks the latter).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;
use BinProto;

my $srv = start_server();

# Send $pkt on a new connection: the answers must be @want, then a close.
sub closes_after {
    my ($pkt, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $s = $srv->new_sock;
    bin_is($s, $pkt . bin_req('noop', opaque => 999), $want, "$name: answer") if @$want;
    send_bytes($s, $pkt) unless @$want;
    is(bin_closed($s, "$name: connection closed"), '', "$name: nothing more");
}

# ---- framing ----
# (A first byte other than 0x80 makes the connection a text one: these
# come after a binary request.)
closes_after(bin_req('noop', opaque => 1) . bin_req('noop', magic => 0x81), [res_pkt('noop', 'ok', opaque => 1)],
             'response magic in a request');
closes_after(bin_req('noop', opaque => 1) . "get foo bar baz 1234567890\r\n", [res_pkt('noop', 'ok', opaque => 1)],
             'a text command on a binary connection');
closes_after(bin_req('get', key => 'key', bodylen => 2, opaque => 5),
             [res_pkt('get', 'unknown', opaque => 5)], 'body shorter than the key');
closes_after(bin_req('set', key => 'key', extras => ext_store(0, 0), bodylen => 6),
             [res_pkt('set', 'unknown')], 'body shorter than extras + key');
closes_after(bin_req('get', key => 'k' x 251, bodylen => 0), [res_pkt('get', 'unknown')],
             'a 251-byte key length with an empty body');
closes_after(bin_req('get', key => 'k' x 251, opaque => 6), [res_pkt('get', 'einval', opaque => 6)], 'get of a 251-byte key');
closes_after(bin_req('set', key => 'k' x 251, extras => ext_store(0, 0), value => 'v'),
             [res_pkt('set', 'einval')], 'set of a 251-byte key');
closes_after(bin_req(0x50, key => 'k' x 251), [res_pkt(0x50, 'einval')], 'unknown opcode with a 251-byte key');
closes_after(bin_req('getq', key => 'k' x 300), [res_pkt('getq', 'einval')], 'quiet requests get the error too');

# ---- unknown opcodes: answered, the connection goes on ----
my $s = $srv->new_sock;
for my $op (0x1f, 0x25, 0x30, 0x80, 0xff) {
    bin_is($s, bin_req($op, opaque => $op) . bin_req('noop', opaque => 1),
           [res_pkt($op, 'unknown', opaque => $op), res_pkt('noop', 'ok', opaque => 1)],
           sprintf('opcode 0x%02x: Unknown command', $op));
}
SKIP: {
    skip 'memcached 1.6.18 loses its place after an unknown opcode with a key or extras', 3
        unless is_memcachedrep();
    bin_is($s, bin_req(0x50, key => 'abc', extras => 'ext', value => 'v' x 20000, opaque => 2)
               . bin_req('noop', opaque => 3),
           [res_pkt(0x50, 'unknown', opaque => 2), res_pkt('noop', 'ok', opaque => 3)],
           'unknown opcode with extras, key and a long value: the body is skipped');
    send_bytes($s, bin_req(0x51, value => 'v' x 100000, opaque => 4));
    bin_is($s, '', res_pkt(0x51, 'unknown', opaque => 4), 'a body sent later');
    bin_is($s, bin_req('noop', opaque => 5), res_pkt('noop', 'ok', opaque => 5), 'is skipped as it arrives');
}

# ---- extras, key or value the opcode does not take: Invalid arguments ----
my @shapes = (
    [get => { value => 'v', key => 'k' }, 'get with a value'],
    [get => {}, 'get without a key'],
    [getk => { extras => 'abcd', key => 'k' }, 'getk with extras'],
    [set => { key => 'k', value => 'v' }, 'set without extras'],
    [set => { extras => 'abcd', key => 'k', value => 'v' }, 'set with 4 bytes of extras'],
    [add => { extras => ext_store(0, 0), value => 'v' }, 'add without a key'],
    [append => { extras => ext_store(0, 0), key => 'k', value => 'v' }, 'append with extras'],
    [prepend => { value => 'v' }, 'prepend without a key'],
    [delete => { key => 'k', value => 'v' }, 'delete with a value'],
    [delete => { key => 'k', extras => 'abcd' }, 'delete with extras'],
    [incr => { key => 'k', extras => 'abcd' }, 'incr with 4 bytes of extras'],
    [decr => { key => 'k', extras => ext_incr(1, 0, 0), value => 'v' }, 'decr with a value'],
    [incr => { extras => ext_incr(1, 0, 0) }, 'incr without a key'],
    [quit => { key => 'k' }, 'quit with a key'],
    [quitq => { key => 'k' }, 'quitq with a key'],
    [noop => { extras => 'ab' }, 'noop with extras'],
    [version => { value => 'abcd' }, 'version with a value'],
    [flush => { key => 'k' }, 'flush with a key'],
    [flush => { extras => 'ab' }, 'flush with 2 bytes of extras'],
    [flushq => { extras => ext_exp(0), value => 'v' }, 'flushq with a value'],
    [stat => { extras => 'abcd' }, 'stat with extras'],
    [touch => { key => 'k' }, 'touch without extras'],
    [gat => { extras => ext_exp(0) }, 'gat without a key'],
    [sasl_list => { key => 'k' }, 'SASL list with a key'],
    [sasl_auth => { value => 'x' }, 'SASL auth without a key'],
    [sasl_auth => { key => 'PLAIN', extras => 'ab', value => 'x' }, 'SASL auth with extras'],
);
push @shapes, (
    [stat => { key => 'k', value => 'v' }, 'stat with a value'],
    [touch => { key => 'k', extras => ext_exp(0), value => 'v' }, 'touch with a value'],
    [gatk => { key => 'k', extras => ext_exp(0), value => 'v' }, 'gatk with a value'],
    [verbosity => {}, 'verbosity without extras'],
    [verbosity => { key => 'k', extras => pack('N', 1) }, 'verbosity with a key'],
) if is_memcachedrep();
for my $sh (@shapes) {
    my ($op, $f, $name) = @$sh;
    closes_after(bin_req($op, %$f, opaque => 77), [res_pkt($op, 'einval', opaque => 77)], $name);
}

# ---- values that can't be stored ----
$s = $srv->new_sock;
my $huge = 'x' x (1024 * 1024 + 1);
bin_set($s, 'tl', 'old');
bin_is($s, bin_req('set', key => 'tl', value => $huge, extras => ext_store(0, 0), opaque => 1) . bin_req('noop', opaque => 2),
       [res_pkt('set', 'e2big', opaque => 1), res_pkt('noop', 'ok', opaque => 2)],
       'set of a value over -I: Too large., the value is skipped');
bin_is($s, bin_req('get', key => 'tl'), res_pkt('get', 'enoent'), 'and the old value is gone');
bin_set($s, 'tl', 'old');
bin_is($s, bin_req('setq', key => 'tl', value => $huge, extras => ext_store(0, 0)), res_pkt('setq', 'e2big'),
       'setq: the same');
bin_is($s, bin_req('get', key => 'tl'), res_pkt('get', 'enoent'), 'old value gone');
bin_set($s, 'tl', 'old');
bin_is($s, bin_req('replace', key => 'tl', value => $huge, extras => ext_store(0, 0)), res_pkt('replace', 'e2big'),
       'replace too large');
bin_is($s, bin_req('get', key => 'tl'), res_pkt('get', 'ok', extras => pack('N', 0), value => 'old', cas => 'any'),
       'keeps the old value');
bin_is($s, bin_req('add', key => 'tl2', value => $huge, extras => ext_store(0, 0)), res_pkt('add', 'e2big'), 'add too large');
bin_is($s, bin_req('append', key => 'tl', value => $huge), res_pkt('append', 'e2big'), 'append of a value too large');
bin_set($s, 'near', 'x' x (1024 * 1024 - 200));
bin_is($s, bin_req('append', key => 'near', value => 'y' x 1000), res_pkt('append', 'not_stored'),
       'append whose result would be too large: Not stored.');
bin_is($s, bin_req('noop'), res_pkt('noop', 'ok'), 'the connection goes on');

# A huge body announced, then the client goes away mid-value.
my $c = $srv->new_sock;
send_bytes($c, substr(bin_req('set', key => 'half', value => 'z' x 100000, extras => ext_store(0, 0)), 0, 5000));
close $c;
# memcachedrep answers a value too large before it arrives (memcached
# 1.6.18 only once it is skipped): the client may stop early.
$c = $srv->new_sock;
my $announce = bin_req('set', key => 'later', value => '', extras => ext_store(0, 0), bodylen => 13 + (3 << 20));
send_bytes($c, $announce);
bin_is($c, '', res_pkt('set', 'e2big'), 'a 3 MB value announced: Too large. at once') if is_memcachedrep();
send_bytes($c, 'v' x (3 << 20));
bin_is($c, bin_req('noop', opaque => 8), [(is_memcachedrep() ? () : res_pkt('set', 'e2big')),
                                         res_pkt('noop', 'ok', opaque => 8)], 'the value is skipped as it arrives');
close $c;
# Truncated headers and bodies, then the client goes away.
for my $cut (1, 12, 23, 30) {
    my $t = $srv->new_sock;
    send_bytes($t, substr(bin_req('get', key => 'truncated-key'), 0, $cut));
    close $t;
}
bin_is($s, bin_req('get', key => 'half'), res_pkt('get', 'enoent'), 'a half-sent set stores nothing; the server is fine');

# Data type is not checked (memcached accepts any).
bin_is($s, bin_req('noop', datatype => 1, opaque => 3), res_pkt('noop', 'ok', opaque => 3), 'data type 1 accepted');

# ---- out of memory ----
my $small = start_server('-M -m 2');
my $m = $small->new_sock;
my $r;
for my $i (1 .. 400) {
    $r = bin_set($m, "key$i", 'x' x 100000);
    last if !$r || $r->{status};
}
ok($r && $r->{status} == $ST{enomem}, '-M: a full cache answers Out of memory');
is($r && $r->{value}, 'Out of memory allocating item', 'with memcached\'s message');
bin_is($m, bin_req('noop'), res_pkt('noop', 'ok'), 'the connection goes on');

# ---- -B ----
my $bin = start_server('-B binary');
my $x = $bin->new_sock;
send_bytes($x, "get a_key_long_enough_for_a_header\r\n");
my ($got, $eof) = read_available($x, 2 * timeout_scale());
ok($eof && $got eq '', '-B binary: a text command closes the connection unanswered');
bin_is($bin->new_sock, bin_req('version'), res_pkt('version', 'ok', value => expected_version()), '-B binary: binary works');

my $ascii = start_server('-B ascii');
$x = $ascii->new_sock;
cmd_is($x, bin_req('version') . "\r\n", "ERROR\r\n", '-B ascii: a binary request is a bad text command');
cmd_is($x, "version\r\n", "VERSION " . expected_version() . "\r\n", '-B ascii: text works');

# -B auto (the default): the first byte of each connection decides.
my $t1 = $srv->new_sock;
my $b1 = $srv->new_sock;
cmd_is($t1, "set auto 0 0 1\r\na\r\n", "STORED\r\n", 'auto: a text connection');
bin_is($b1, bin_req('get', key => 'auto'), res_pkt('get', 'ok', extras => pack('N', 0), value => 'a', cas => 'any'),
       'auto: a binary connection beside it');
cmd_is($t1, "get auto\r\n", "VALUE auto 0 1\r\na\r\nEND\r\n", 'the text one stays text');
send_bytes($b1, "get a_key_long_enough_for_a_header\r\n");
($got, $eof) = read_available($b1, 2 * timeout_scale());
ok($eof && $got eq '', 'and the binary one stays binary: text on it closes it');

# ---- UDP ----
my $u = start_server(udp => 1);
my $us = $u->new_udp_sock;
udp_request($us, 7, bin_req('set', key => 'ukey', value => 'uval', extras => ext_store(2, 0), opaque => 1)
                    . bin_req('getk', key => 'ukey', opaque => 2));
my $p1 = udp_response($us, 7);
my $p2 = udp_response($us, 7);
ok(defined $p1 && defined $p2, 'UDP: one message per request');
is(substr($p1 // '', 0, 2), "\x81\x01", 'UDP: set answered');
is(unpack('n', substr($p1 // '', 6, 2)), 0, 'stored');
like($p2 // '', qr/\A\x81\x0c.*ukeyuval\z/s, 'UDP: getk answered with key and value');

done_testing;
