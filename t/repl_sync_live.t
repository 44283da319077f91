#!/usr/bin/perl
# Writes made on both nodes while a bulk sync is in progress are not lost
# (doc/replication.md 4.3), and both nodes keep answering clients during it.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use Time::HiRes qw(time);

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

my $N = 100_000;
my $rport = free_port();
my $a = start_node($rport, args => '-m 512');
my $sa = $a->new_sock;
my $val = 'x' x 1000;
for my $chunk (0 .. $N / 1000 - 1) {
    my $batch = '';
    $batch .= "set fill:$_ 0 0 1000 noreply\r\n$val\r\n" for $chunk * 1000 .. $chunk * 1000 + 999;
    send_bytes($sa, $batch);
}
cmd_is($sa, "version\r\n", "VERSION 1.6.45\r\n", 'A filled');
is(stats($sa)->{curr_items}, $N, "A holds $N items");

# Start B and write on both while B receives the 100 MB.
my $b = start_node($rport, args => '-m 512');
my $sb = $b->new_sock;
my ($during, $slowest) = (0, 0);
my $i = 0;
while (repl_state($b) ne 'streaming' && $i < 5000) {
    for my $pair ([$sa, 'A'], [$sb, 'B']) {
        my ($s, $tag) = @$pair;
        my $t = time;
        is(mem_set($s, "live$tag:$i", "v$i"), 'STORED', "write $i on $tag during the sync") or last;
        $slowest = time - $t if time - $t > $slowest;
    }
    $during++ if repl_state($b) eq 'syncing';
    $i++;
}
diag(sprintf "%d write pairs, %d seen while B was syncing; slowest answer %.1f ms",
     $i, $during, $slowest * 1000);
wait_streaming($a, $b);

sub all_there {
    my ($sock, $prefix, $n) = @_;
    my @keys = map { "$prefix$_" } 0 .. $n - 1;
    while (my @chunk = splice(@keys, 0, 200)) {
        my $h = mem_get_multi($sock, \@chunk) or return 0;
        return 0 unless keys %$h == @chunk;
    }
    return 1;
}
ok(wait_until(sub { all_there($sb, 'fill:', $N) }, $ReplTest::DEADLINE, 0.2), 'B has the whole cache');
for my $node ([$sa, 'A'], [$sb, 'B']) {
    my ($s, $name) = @$node;
    ok(wait_until(sub { all_there($s, 'liveA:', $i) && all_there($s, 'liveB:', $i) },
                  $ReplTest::DEADLINE, 0.2),
       "$name has every write made on either node during the sync");
}

done_testing;
