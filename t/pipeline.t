#!/usr/bin/perl
# Pipelining: many commands in one write are answered in order; commands
# and data blocks split across writes at any byte are reassembled.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

# A mixed batch in one write.
my $req = "set a 0 0 1\r\n1\r\nget a\r\nincr a 4\r\nappend a 0 0 1\r\nx\r\nget a nokey a\r\n"
        . "delete a\r\nget a\r\nversion\r\nbogus\r\nadd a 0 0 1\r\n2\r\nget a\r\n";
my $ans = "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n5\r\nSTORED\r\n"
        . "VALUE a 0 2\r\n5x\r\nVALUE a 0 2\r\n5x\r\nEND\r\n"
        . "DELETED\r\nEND\r\nVERSION " . expected_version() . "\r\nERROR\r\nSTORED\r\n"
        . "VALUE a 0 1\r\n2\r\nEND\r\n";
cmd_is($sock, $req, $ans, 'mixed batch answered in order');

# The same batch one byte per write.
$sock->setsockopt(Socket::IPPROTO_TCP(), Socket::TCP_NODELAY(), 1);
cmd_is($sock, "delete a\r\n", "DELETED\r\n");
for my $i (0 .. length($req) - 1) {
    send_bytes($sock, substr($req, $i, 1));
    sleep 0.001 if $i % 7 == 0;
}
expect_is($sock, $ans, 'same batch sent one byte at a time');

# Split points in every part of a set: command line, "\r\n", data, trailer.
my $set = "set split 0 0 10\r\n0123456789\r\n";
for my $cut (1 .. length($set) - 1) {
    send_bytes($sock, substr($set, 0, $cut));
    sleep 0.01;
    send_bytes($sock, substr($set, $cut));
    expect_is($sock, "STORED\r\n", "set split after byte $cut") or last;
}
mem_get_is($sock, 'split', '0123456789');

# Thousands of commands in one write: the answers come back complete.
my $n = 5000;
my $many = join '', map { "set p$_ 0 0 " . length($_) . "\r\n$_\r\nget p$_\r\n" } 1 .. $n;
send_bytes($sock, $many);
my $bad = 0;
for my $i (1 .. $n) {
    my $l = length $i;
    my $got = read_bytes($sock, length("STORED\r\nVALUE p$i 0 $l\r\n$i\r\nEND\r\n"));
    if (!defined $got || $got ne "STORED\r\nVALUE p$i 0 $l\r\n$i\r\nEND\r\n") {
        $bad = $i;
        last;
    }
}
is($bad, 0, "$n set+get pairs in one write answered in order");

# Large answers to a pipeline of gets (the server must not drop output
# while it is blocked on a slow reader).
my $val = 'v' x 200_000;
cmd_is($sock, "set large 0 0 200000\r\n$val\r\n", "STORED\r\n");
send_bytes($sock, "get large\r\n" x 50);
sleep 0.3;    # let the server fill the socket buffers before we read
my $ok = 0;
for (1 .. 50) {
    my $got = read_bytes($sock, length("VALUE large 0 200000\r\n$val\r\nEND\r\n"));
    $ok++ if defined $got && $got eq "VALUE large 0 200000\r\n$val\r\nEND\r\n";
}
is($ok, 50, '50 pipelined gets of 200 KB each');

# Two connections interleaving do not see each other's partial commands.
my $s1 = $srv->new_sock;
my $s2 = $srv->new_sock;
send_bytes($s1, "set x1 0 0 5\r\nab");
send_bytes($s2, "set x2 0 0 5\r\nvw");
send_bytes($s1, "cde\r\n");
send_bytes($s2, "xyz\r\n");
expect_is($s1, "STORED\r\n", 'first interleaved set');
expect_is($s2, "STORED\r\n", 'second interleaved set');
cmd_is($s1, "get x1 x2\r\n", "VALUE x1 0 5\r\nabcde\r\nVALUE x2 0 5\r\nvwxyz\r\nEND\r\n");

# A client that closes with commands in flight does not upset the server.
my $s3 = $srv->new_sock;
send_bytes($s3, "get large\r\n" x 20);
close $s3;
cmd_is($sock, "version\r\n", "VERSION " . expected_version() . "\r\n", 'server fine after an abrupt close');

done_testing;
