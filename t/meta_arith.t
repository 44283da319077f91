#!/usr/bin/perl
# ma: the meta arithmetic command (memcached-protocol.txt, "Meta
# Arithmetic"): incr/decr modes, delta, vivify with an initial value,
# CAS compare and explicit CAS, TTL, returned flags, quiet mode, errors.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;


cmd_is($sock, "set n 3 0 2\r\n10\r\n", "STORED\r\n");
cmd_is($sock, "ma n\r\n", "HD\r\n", 'incr by 1');
cmd_is($sock, "ma n v\r\n", "VA 2\r\n12\r\n", 'v returns the new value');
cmd_is($sock, "ma n D10 v\r\n", "VA 2\r\n22\r\n", 'D');
cmd_is($sock, "ma n MD D5 v\r\n", "VA 2\r\n17\r\n", 'MD decrements');
cmd_is($sock, "ma n M- v\r\n", "VA 2\r\n16\r\n", 'M- decrements');
cmd_is($sock, "ma n M+ v\r\n", "VA 2\r\n17\r\n", 'M+ increments');
cmd_is($sock, "ma n MI v\r\n", "VA 2\r\n18\r\n", 'MI increments');
cmd_is($sock, "ma n MD D100 v\r\n", "VA 1\r\n0\r\n", 'decr stops at 0');
cmd_is($sock, "mg n v f\r\n", "VA 2 f3\r\n0 \r\n", 'a shorter value is padded; flags kept');
cmd_is($sock, "set n 0 0 20\r\n18446744073709551615\r\n", "STORED\r\n");
cmd_is($sock, "ma n v\r\n", "VA 1\r\n0\r\n", 'incr wraps');
cmd_is($sock, "ma n D18446744073709551615 v\r\n", "VA 20\r\n18446744073709551615\r\n", 'largest delta');

my $cas = meta_cas($sock, 'n');
send_bytes($sock, "ma n t c k O9 v\r\n");
my $line = read_line($sock) // '';
like($line, qr/^VA 1 t-1 c(\d+) kn O9\r\n\z/, 't c k O in request order');
is(read_line($sock), "0\r\n", 'and the value');
my ($c) = $line =~ / c(\d+)/;
isnt($c, $cas, 'a new CAS');
is(meta_cas($sock, 'n'), $c, 'c is the item CAS');

# ---- Misses and N/J ----
cmd_is($sock, "ma nokey\r\n", "NF\r\n", 'miss');
cmd_is($sock, "ma nokey v t c k O1\r\n", "NF knokey O1\r\n", 'NF echoes k and O only');
cmd_is($sock, "ma nokey q\r\n", "NF\r\n", 'q does not hide NF');
cmd_is($sock, "ma nokey J5 v\r\n", "NF\r\n", 'J without N creates nothing');
cmd_is($sock, "ma viv N0 J13 v\r\n", "VA 2\r\n13\r\n", 'N creates with J, delta not applied');
cmd_is($sock, "ma viv v\r\n", "VA 2\r\n14\r\n", 'then counts from there');
cmd_is($sock, "mg viv f t\r\n", "HD f0 t-1\r\n", 'vivified with flags 0');
cmd_is($sock, "ma viv2 N0 MD v\r\n", "VA 1\r\n0\r\n", 'J defaults to 0');
my $t0 = time;
cmd_clock_is($sock, "ma viv3 N100 v t\r\n", "VA 1 t%d\r\n0\r\n", ttl => 100, since => $t0,
             name => 'N sets the TTL');
cmd_is($sock, "ma viv4 N0 J18446744073709551615 v\r\n", "VA 20\r\n18446744073709551615\r\n", 'largest J');

# ---- T ----
SKIP: {
    skip 'ma T does not move the TTL in memcached 1.6.18', 3 unless is_memcachedrep();
    cmd_is($sock, "set tt 0 0 1\r\n1\r\n", "STORED\r\n");
    $t0 = time;
    cmd_clock_is($sock, "ma tt T50 t v\r\n", "VA 1 t%d\r\n2\r\n", ttl => 50, since => $t0,
                 name => 'T sets the TTL on success');
    cmd_clock_is($sock, "mg tt t\r\n", "HD t%d\r\n", ttl => 50, since => $t0, name => 'mg tt t');
}
$t0 = time;
cmd_clock_is($sock, "ma tt2 N100 T50 t\r\n", "HD t%d\r\n", ttl => 50, since => $t0,
             name => 'N and T set one TTL: the later wins');
cmd_clock_is($sock, "ma tt3 T50 N100 t\r\n", "HD t%d\r\n", ttl => 100, since => $t0,
             name => 'the later wins (2)');

# ---- C, E ----
$cas = meta_cas($sock, 'n');
cmd_is($sock, "ma n C1 v\r\n", "EX\r\n", 'C mismatch');
cmd_is($sock, "ma n C1 k O2\r\n", "EX kn O2\r\n", 'EX echoes k and O');
cmd_is($sock, "ma n C1 q\r\n", "EX\r\n", 'q does not hide EX');
cmd_is($sock, "ma n C$cas v\r\n", "VA 1\r\n1\r\n", 'C matching');
SKIP: {
    skip 'ma E is newer than this memcached', 3 unless is_memcachedrep();
    cmd_is($sock, "ma n E4242 c v\r\n", "VA 1 c4242\r\n2\r\n", 'E sets the new CAS');
    cmd_is($sock, "ma n C4242 E4343 c\r\n", "HD c4343\r\n", 'compare then set');
    cmd_is($sock, "ma evv N0 J1 E99 c\r\n", "HD c99\r\n", 'E on a vivified item');
}

# ---- q ----
cmd_is($sock, "ma n q\r\nma n q v\r\nmn\r\n", "MN\r\n", 'q hides HD and VA');
cmd_is($sock, "ma qviv N0 q\r\nmn\r\n", "MN\r\n", 'q hides a vivify') if is_memcachedrep();

# ---- b ----
cmd_is($sock, "set bin 0 0 1\r\n5\r\n", "STORED\r\n");
cmd_is($sock, "ma Ymlu b v k\r\n", "VA 1 kYmlu b\r\n6\r\n", 'base64 key, returned in base64');

# ---- Errors ----
cmd_is($sock, "set s 0 0 3\r\nabc\r\n", "STORED\r\n");
cmd_is($sock, "ma s\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", 'non-numeric');
cmd_is($sock, "mg empty N0\r\nma empty C99999\r\n",
       "HD W\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
       'an empty value is refused before the CAS is compared');
cmd_is($sock, "ma s q\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
       'errors are never quiet');
cmd_is($sock, "ma\r\n", "ERROR\r\n", 'no key');
cmd_is($sock, "ma " . ('k' x 251) . "\r\n", "CLIENT_ERROR bad command line format\r\n", 'key too long');
for my $f ('Z', 'v v', 'Dx', 'D-1', 'D18446744073709551616', 'D', 'Jx', 'N', 'Nx', 'Tx', 'Cx',
           'M', 'MII', 'Yml b') {
    my ($key, $flags) = $f =~ /^(\S+) b$/ ? ($1, 'b') : ('n', $f);
    cmd_is($sock, "ma $key $flags\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n", "bad flags '$f'");
}
for my $m ('MX', 'Mi', 'M1') {
    cmd_is($sock, "ma n $m\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n", "mode $m");
}
cmd_is($sock, "ma n O" . ('o' x 32) . "\r\n", "CLIENT_ERROR opaque token too long\r\n", 'opaque too long');
cmd_is($sock, "ma n " . join(' ', ('P') x 18) . "\r\n", "CLIENT_ERROR options flags too long\r\n",
       '20 words');
SKIP: {
    skip 'memcached 1.6.18 increments before checking the opaque', 1 unless is_memcachedrep();
    cmd_is($sock, "ma n v\r\n", "VA 1\r\n6\r\n", 'no error changed the value');
}

# ---- Counters ----
my $s0 = stats($sock);
cmd_is($sock, "ma n\r\nma n MD\r\nma nk\r\nma nk MD\r\nma nk2 N0\r\nma n C1\r\n",
       "HD\r\nHD\r\nNF\r\nNF\r\nHD\r\nEX\r\n");
my $s1 = stats($sock);
is($s1->{incr_hits} - $s0->{incr_hits}, 1, 'incr_hits');
is($s1->{decr_hits} - $s0->{decr_hits}, 1, 'decr_hits');
is($s1->{incr_misses} - $s0->{incr_misses}, 1, 'incr_misses (a vivify is no miss)');
is($s1->{decr_misses} - $s0->{decr_misses}, 1, 'decr_misses');

done_testing;
