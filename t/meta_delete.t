#!/usr/bin/perl
# md: the meta delete (memcached-protocol.txt, "Meta Delete"): plain
# delete, CAS compare, invalidation (I, with T), removing only the value
# (x), explicit CAS (E), echoed flags, quiet mode, and the errors.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;


cmd_is($sock, "set d 0 0 1\r\n1\r\n", "STORED\r\n");
cmd_is($sock, "md d\r\n", "HD\r\n", 'delete');
cmd_is($sock, "md d\r\n", "NF\r\n", 'delete of a missing key');
cmd_is($sock, "mg d\r\n", "EN\r\n", 'gone');
cmd_is($sock, "md d k O4\r\n", "NF kd O4\r\n", 'NF echoes k and O');
cmd_is($sock, "md d O4 k\r\n", "NF O4 kd\r\n", 'in request order');
cmd_is($sock, "md d q\r\nmn\r\n", "NF\r\nMN\r\n", 'q does not hide NF');
cmd_is($sock, "set d 0 0 1\r\n1\r\n", "STORED\r\n");
cmd_is($sock, "md d q k\r\nmn\r\n", "MN\r\n", 'q hides HD');
cmd_is($sock, "set d 0 0 1\r\n1\r\n", "STORED\r\n");
cmd_is($sock, "md d T30\r\n", "HD\r\n", 'T without I: a plain delete');
cmd_is($sock, "mg d\r\n", "EN\r\n");
cmd_is($sock, "set d 0 0 1\r\n1\r\n", "STORED\r\n");
cmd_is($sock, "md d c f t v s\r\n", "HD\r\n", 'flags md has no use for are ignored');

# ---- C ----
cmd_is($sock, "set d 0 0 1\r\n1\r\n", "STORED\r\n");
my $cas = meta_cas($sock, 'd');
cmd_is($sock, "md d C1 O1 k\r\n", "EX O1 kd\r\n", 'C mismatch: EX with echoes');
cmd_is($sock, "md d C1 q\r\n", "EX\r\n", 'q does not hide EX');
cmd_is($sock, "md d C$cas\r\n", "HD\r\n", 'C matching deletes');
cmd_is($sock, "md d C$cas\r\n", "NF\r\n", 'then it is gone');

# ---- I: mark stale instead of deleting ----
my $t0 = time;
cmd_is($sock, "set s 3 100 2\r\nss\r\n", "STORED\r\n");
$cas = meta_cas($sock, 's');
cmd_is($sock, "md s I\r\n", "HD\r\n", 'I');
my $cas2 = meta_cas($sock, 's');
ok($cas2 && $cas2 != $cas, 'I gives a new CAS');
# (meta_cas's mg took the win token: u does not keep a client from winning.)
cmd_clock_is($sock, "mg s v f t\r\n", "VA 2 f3 t%d Z X\r\nss\r\n", ttl => 100, since => $t0,
             name => 'stale, value, flags and TTL kept');
$t0 = time;
cmd_is($sock, "md s I T30\r\n", "HD\r\n", 'I with T');
cmd_clock_is($sock, "mg s t\r\n", "HD t%d X W\r\n", ttl => 30, since => $t0,
             name => 'new TTL, and the win token is back');
cmd_is($sock, "md s I C1\r\n", "EX\r\n", 'I with a wrong C');
cmd_is($sock, "md s\r\n", "HD\r\n", 'a stale item can be deleted');
cmd_is($sock, "md s I\r\n", "NF\r\n", 'I on a missing key');

SKIP: {
    skip 'md x and E are newer than this memcached', 9 unless is_memcachedrep();
    $t0 = time;
    cmd_is($sock, "set x 7 100 5\r\nvalue\r\n", "STORED\r\n");
    cmd_is($sock, "md x x\r\n", "HD\r\n", 'x removes the value');
    cmd_clock_is($sock, "mg x v f t\r\n", "VA 0 f7 t%d\r\n\r\n", ttl => 100, since => $t0,
                 name => 'the item stays, empty, flags and TTL kept');
    cmd_is($sock, "set x 7 100 5\r\nvalue\r\n", "STORED\r\n");
    cmd_is($sock, "md x x I T20\r\n", "HD\r\n", 'x with I');
    cmd_is($sock, "mg x v t\r\n", "VA 0 t20 X W\r\n\r\n", 'an empty stale item');
    cmd_is($sock, "md x I E777\r\n", "HD\r\n", 'I with E');
    cmd_is($sock, "mg x c\r\n", "HD c777 X W\r\n", 'the CAS of E, and a new win token');
    cmd_is($sock, "md x Ex\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n", 'bad E');
}

# ---- b ----
cmd_is($sock, "set bin 0 0 1\r\n1\r\n", "STORED\r\n");
cmd_is($sock, "md Ymlu b k\r\n", "HD kYmlu b\r\n", 'base64 key, returned in base64');
cmd_is($sock, "md Ymlu b\r\n", "NF\r\n");
cmd_is($sock, "md Yml b\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n", 'bad base64');

# ---- Errors: md answers one message for flag faults ----
cmd_is($sock, "md\r\n", "ERROR\r\n", 'no key');
cmd_is($sock, "md " . ('k' x 251) . "\r\n", "CLIENT_ERROR bad command line format\r\n", 'key too long');
for my $f ('Z', 'q q', 'Tx', 'Cx', 'C', 'Dx', 'Jx', 'Fx', 'M', 'noreply', '0') {
    cmd_is($sock, "md d $f\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n", "bad flags '$f'");
}
cmd_is($sock, "md d O" . ('o' x 32) . "\r\n", "CLIENT_ERROR opaque token too long\r\n", 'opaque too long');
cmd_is($sock, "md d " . join(' ', ('P') x 18) . "\r\n", "CLIENT_ERROR options flags too long\r\n",
       '20 words');

# ---- Counters: EX is a delete miss, I no delete at all ----
cmd_is($sock, "set c 0 0 1\r\n1\r\nset c2 0 0 1\r\n1\r\n", "STORED\r\nSTORED\r\n");
my $s0 = stats($sock);
cmd_is($sock, "md c C1\r\nmd c I\r\nmd c\r\nmd c\r\n", "EX\r\nHD\r\nHD\r\nNF\r\n");
my $s1 = stats($sock);
is($s1->{delete_hits} - $s0->{delete_hits}, 1, 'delete_hits');
is($s1->{delete_misses} - $s0->{delete_misses}, 2, 'delete_misses: EX and NF');

done_testing;
