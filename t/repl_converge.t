#!/usr/bin/perl
# Two clients hammer the same 1000 keys at the same time, one on each
# node.  Once they stop, every key must be identical (value, flags, CAS) on
# both nodes: last writer wins by version (doc/replication.md section 1).
# repcached leaves all 1000 different here.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use Time::HiRes qw(time);

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

my $KEYS = 1000;
my ($a, $b) = start_pair();

# Each writer: rounds over all keys in random order, a mix of set, append,
# incr and delete, pipelined, for about 3 seconds.
sub writer {
    my ($srv, $tag) = @_;
    my $sock = $srv->new_sock;
    my $end = time + 3;
    my $round = 0;
    srand($$);
    while (time < $end) {
        $round++;
        my $batch = '';
        for my $k (map { int rand $KEYS } 1 .. 500) {
            my $r = rand;
            if ($r < 0.7) {
                my $v = "$tag-$round-$k";
                $batch .= "set k$k $round 0 " . length($v) . " noreply\r\n$v\r\n";
            } elsif ($r < 0.8) {
                $batch .= "append k$k 0 0 1 noreply\r\n$tag\r\n";
            } elsif ($r < 0.9) {
                $batch .= "set n$k 0 0 1 noreply\r\n1\r\nincr n$k 7 noreply\r\n";
            } else {
                $batch .= "delete k$k noreply\r\n";
            }
        }
        send_bytes($sock, $batch) or exit 1;
        send_bytes($sock, "version\r\n") or exit 1;
        my $l = read_line($sock, 30);
        exit 1 unless defined $l && $l =~ /^VERSION/;
    }
    exit 0;
}

my @pids;
for my $w ([$a, 'A'], [$b, 'B']) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) { writer(@$w) }
    push @pids, $pid;
}
for my $pid (@pids) {
    waitpid($pid, 0);
    is($? >> 8, 0, "writer $pid finished");
}

my ($sa, $sb) = ($a->new_sock, $b->new_sock);
sub snapshot {
    my ($sock) = @_;
    my %all;
    for my $prefix ('k', 'n') {
        my @keys = map { "$prefix$_" } 0 .. $KEYS - 1;
        while (my @chunk = splice(@keys, 0, 200)) {
            my $h = mem_get_multi($sock, \@chunk, 'gets') or return undef;
            $all{$_} = join ' ', @{ $h->{$_} }{qw(value flags cas)} for keys %$h;
        }
    }
    return \%all;
}
sub differences {
    my ($x, $y) = (snapshot($sa), snapshot($sb));
    return -1 unless $x && $y;
    my %keys = (%$x, %$y);
    return scalar grep { ($x->{$_} // '') ne ($y->{$_} // '') } keys %keys;
}
my $diff;
ok(wait_until(sub { ($diff = differences()) == 0 }, $ReplTest::DEADLINE, 0.2),
   'all keys identical on both nodes after concurrent writers') or diag("$diff keys differ");
my $st = stats($sa);
diag("conflicts decided by version on A: $st->{repl_conflicts}");

done_testing;
