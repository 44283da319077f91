#!/usr/bin/perl
# A frozen peer (SIGSTOP) costs the other node no CPU spin and no client
# stall; writes made on both sides while one is frozen are on both once it
# resumes (SIGCONT).  Done in both directions, and once with a pending
# bound small enough (-q) that the stream overflows and the nodes must
# fall back to a bulk sync.

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;
use Time::HiRes qw(time sleep);

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();
plan skip_all => 'needs /proc' unless -r "/proc/$$/stat";

# CPU seconds (user + system) the process has used.
sub cpu_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $line = <$fh>;
    $line =~ s/^.*\) //;
    my @f = split ' ', $line;
    return ($f[11] + $f[12]) / 100; # utime, stime in clock ticks
}

sub write_batch {
    my ($sock, $prefix, $n) = @_;
    my $batch = '';
    $batch .= "set $prefix$_ 0 0 " . length("v$_") . " noreply\r\nv$_\r\n" for 1 .. $n;
    send_bytes($sock, $batch);
    return cmd_is($sock, "version\r\n", "VERSION 1.6.45\r\n", "batch $prefix answered");
}

sub all_there {
    my ($sock, $prefix, $n) = @_;
    my @keys = map { "$prefix$_" } 1 .. $n;
    while (my @chunk = splice(@keys, 0, 100)) {
        my $h = mem_get_multi($sock, \@chunk) or return 0;
        return 0 unless keys %$h == @chunk;
    }
    return 1;
}

for my $case (['A-frozen', 0, ''], ['B-frozen', 1, ''], ['overflow', 0, '-q 100']) {
    my ($name, $freeze_b, $args) = @$case;
    my ($a, $b) = start_pair(args => $args);
    my ($frozen, $live) = $freeze_b ? ($b, $a) : ($a, $b);
    my $sl = $live->new_sock;
    my $sf = $frozen->new_sock;

    $frozen->signal('STOP');
    # Keep writing on the live node while the peer is frozen.
    my $cpu0 = cpu_of($live->pid);
    my $t0 = time;
    for my $round (1 .. 5) {
        my $t = time;
        write_batch($sl, "$name-live$round:", 400);
        ok(time - $t < 2 * timeout_scale(), "$name: live node answers promptly (round $round)");
    }
    sleep 1;
    my $cpu = cpu_of($live->pid) - $cpu0;
    my $wall = time - $t0;
    ok($cpu < 0.6 * $wall, sprintf("$name: live node does not spin (%.2f s CPU in %.2f s)", $cpu, $wall));

    # Writes queued on the frozen node's socket land once it resumes.
    send_bytes($sf, "set $name-frozen 0 0 6\r\nfrozen\r\n");
    $frozen->signal('CONT');
    is(read_line($sf), "STORED\r\n", "$name: write made to the frozen node is answered after SIGCONT");

    wait_streaming($a, $b);
    for my $round (1 .. 5) {
        ok(wait_until(sub { all_there($frozen->new_sock, "$name-live$round:", 400) }, $ReplTest::DEADLINE, 0.1),
           "$name: round $round written on the live node reached the resumed one");
    }
    wait_value($live->new_sock, "$name-frozen", 'frozen', "$name: the resumed node's write reached the live one");
    if ($args =~ /-q/) {
        my $st = stats($sl);
        ok($st->{repl_overflows} >= 1 || stats($sf)->{repl_overflows} >= 1, 'overflow counted');
    }
    $_->stop for $a, $b;
}

done_testing;
