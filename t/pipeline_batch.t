#!/usr/bin/perl
# Pipelined batches take the fast paths of proto_text.c: the keys of the
# buffered commands are prefetched before they run (a scan that must never
# change an answer, whatever the batch holds), and small values are copied
# into the answer text instead of being sent from item memory.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

# Values on both sides of the copy threshold (512 bytes with "\r\n"), in
# one batch, and a multi-get mixing them.
my @sizes = (0, 1, 100, 509, 510, 511, 512, 4096);
my ($req, $ans) = ('', '');
for my $n (@sizes) {
    my $v = chr(ord('a') + $n % 26) x $n;
    $req .= "set k$n 7 0 $n\r\n$v\r\nget k$n\r\ngets k$n\r\n";
    $ans .= "STORED\r\nVALUE k$n 7 $n\r\n$v\r\nEND\r\n";
    $ans .= "VALUE k$n 7 $n \\d+\r\n$v\r\nEND\r\n";
}
send_bytes($sock, $req);
# As many lines as the answer has (the CAS uniques make its length
# unknown), then whatever else arrives: nothing, if all is well.
my $got = '';
for (1 .. ($ans =~ tr/\n//)) {
    my $line = read_line($sock);
    last unless defined $line;
    $got .= $line;
}
$got .= read_available($sock) // '';
like($got, qr/\A$ans\z/, 'values around the copy threshold answered whole');
my $multi = join ' ', map {"k$_"} @sizes;
my $want = join '', map { my $v = chr(ord('a') + $_ % 26) x $_; "VALUE k$_ 7 $_\r\n$v\r\n" } @sizes;
cmd_is($sock, "get $multi\r\n", "${want}END\r\n", 'multi-get of small and large values');

# Data blocks that look like commands, a data block shorter than its
# length, lengths that are not numbers: the scan skips or stops, the
# answers are the usual ones.
$req = "set a 0 0 14\r\nget b\r\nget c\r\n\r\nget a\r\n"
     . "set b 0 0 -1\r\nget a\r\n"
     . "set b 0 0 zz\r\nget a\r\n"
     . "set b 0 0 2\r\nxyz\r\nget b\r\n"
     . "get " . ('k' x 251) . "\r\nget a a\r\n";
my $va = "VALUE a 0 14\r\nget b\r\nget c\r\n\r\n";
$ans = "STORED\r\n${va}END\r\n"
     . "CLIENT_ERROR bad command line format\r\n${va}END\r\n"
     . "CLIENT_ERROR bad command line format\r\n${va}END\r\n"
     . "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n"
     . "CLIENT_ERROR bad command line format\r\n${va}${va}END\r\n";
cmd_is($sock, $req, $ans, 'batch with misleading and broken storage commands');

# A batch ending in the middle of a value, then the rest.
send_bytes($sock, "get a\r\nset c 0 0 5\r\nab");
expect_is($sock, "${va}END\r\n", 'answer before the split value');
cmd_is($sock, "cde\r\nget c\r\n", "STORED\r\nVALUE c 0 5\r\nabcde\r\nEND\r\n",
       'split value completed');

# Many pipelined batches while the hash table grows from 2^13 buckets.
my $grow = start_server(args => '-o hashpower=13');
my $g = $grow->new_sock;
my $n = 20000;
my $bad = 0;
for (my $i = 0; $i < $n && !$bad; $i += 16) {
    my ($r, $a) = ('', '');
    for my $j ($i .. $i + 15) {
        $r .= "set g$j 0 0 " . length($j) . "\r\n$j\r\n";
        $a .= "STORED\r\n";
        my $k = int($j / 2);
        $r .= "get g$k\r\n";
        $a .= "VALUE g$k 0 " . length($k) . "\r\n$k\r\nEND\r\n";
    }
    send_bytes($g, $r);
    my $got = read_bytes($g, length $a);
    $bad = $i + 1 if !defined $got || $got ne $a;
}
is($bad, 0, "$n sets and gets in batches of 16 during expansion");
ok(wait_until(sub { stats($g)->{hash_power_level} > 13 }), 'the table grew');

done_testing();
