#!/usr/bin/perl
# SIGTERM and SIGINT first drain what is pending for the peer, then exit:
# every write acknowledged before the signal is on the peer, 1 MB values
# included.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

my $big = 1024 * 1024 - 512; # the largest value -I 1m takes with a short key
for my $sig ('TERM', 'INT') {
    my ($a, $b) = start_pair(args => '-m 256');
    my $sa = $a->new_sock;
    my $n = 30;
    for my $i (1 .. $n) {
        my $v = chr(65 + $i % 26) x $big;
        is(mem_set($sa, "big$sig$i", $v), 'STORED', "1 MB value $i stored") or last;
    }
    $a->signal($sig);
    my $status = $a->wait_exit(60);
    ok(defined $status && ($status >> 8) == 0 && ($status & 127) == 0, "SIG$sig: clean exit");
    my $sb = $b->new_sock;
    my $have = 0;
    for my $i (1 .. $n) {
        my $h = mem_get_multi($sb, ["big$sig$i"]);
        $have++ if $h && $h->{"big$sig$i"} && $h->{"big$sig$i"}{value} eq chr(65 + $i % 26) x $big;
    }
    is($have, $n, "SIG$sig: all $n values acknowledged before the signal are on the peer");
    $b->stop;
}

done_testing;
