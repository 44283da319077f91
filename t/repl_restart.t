#!/usr/bin/perl
# A node killed with SIGKILL gets the whole cache back from the survivor
# when it restarts, including the writes made while it was down; either
# node (the one that listens or the one that dials) can be the one that
# dies.  The restarted node's own writes made while apart reach the
# survivor too (bulk sync in both directions).

use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcachedTest;
use ReplTest;

plan skip_all => 'replication is memcachedrep only' unless is_memcachedrep();

my $N = 2000;
my ($a, $b, $rport) = start_pair();

sub fill {
    my ($sock, $prefix, $n) = @_;
    my $batch = '';
    $batch .= "set $prefix$_ $_ 0 " . length("v$_") . " noreply\r\nv$_\r\n" for 1 .. $n;
    send_bytes($sock, $batch);
}

sub count_present {
    my ($sock, $prefix, $n) = @_;
    my @keys = map { "$prefix$_" } 1 .. $n;
    my $found = 0;
    while (my @chunk = splice(@keys, 0, 100)) {
        my $h = mem_get_multi($sock, \@chunk) or return -1;
        for my $k (keys %$h) {
            my ($i) = $k =~ /(\d+)$/;
            $found++ if $h->{$k}{value} eq "v$i" && $h->{$k}{flags} == $i;
        }
    }
    return $found;
}

sub wait_count {
    my ($sock, $prefix, $n, $name) = @_;
    my $got;
    ok(wait_until(sub { ($got = count_present($sock, $prefix, $n)) == $n }, $ReplTest::DEADLINE, 0.1),
       $name) or diag("$got of $n present");
}

my $sa = $a->new_sock;
fill($sa, 'first:', $N);
cmd_is($sa, "version\r\n", "VERSION 1.6.45\r\n", 'A took the batch');
wait_count($b->new_sock, 'first:', $N, 'batch written on A is on B');

sub role { my $st = stats($_[0]->new_sock); return $st->{repl_role} // '' }

for my $role ('listening', 'dialing') {
    my ($victim, $survivor) = role($a) eq $role ? ($a, $b) : ($b, $a);
    is(role($victim), $role, "victim is the $role node");
    my $victim_name = "the $role node";
    my $port = $victim->port;
    $victim->signal('KILL');
    ok(wait_until(sub { !$victim->alive }, 10), "$victim_name killed with SIGKILL");
    $victim->wait_exit(5);

    my $ss = $survivor->new_sock;
    ok(wait_until(sub { repl_state($survivor) =~ /^(down|connecting)$/ }, $ReplTest::DEADLINE),
       'survivor sees the link down');
    my $tag = "out$role";
    fill($ss, "$tag:", 500);
    cmd_is($ss, "version\r\n", "VERSION 1.6.45\r\n", 'survivor keeps serving alone');
    is(count_present($ss, 'first:', $N), $N, 'survivor still has everything');

    my $back = start_node($rport, port => $port);
    wait_streaming($back, $survivor);
    my $sb = $back->new_sock;
    wait_count($sb, 'first:', $N, "restarted $victim_name has the whole cache back");
    wait_count($sb, "$tag:", 500, "and the writes made while it was down");

    # The restarted node's writes go back to the survivor.
    fill($sb, "$tag-back:", 100);
    wait_count($ss, "$tag-back:", 100, 'writes on the restarted node reach the survivor');
    if ($victim == $a) { $a = $back } else { $b = $back }
}

my $st = stats($a->new_sock);
ok($st->{repl_bulk_syncs} >= 1, 'bulk syncs counted');

done_testing;
