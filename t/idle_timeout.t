#!/usr/bin/perl
# -o idle_timeout=N: a connection idle for N seconds is closed (silently);
# a connection that keeps sending commands stays open.  idle_kicks counts.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $VERSION = "VERSION " . expected_version() . "\r\n";
my $srv = start_server('-o idle_timeout=2');
# Without the option nothing is closed (checked at the end, after the wait).
my $plain = start_server();
my $p = $plain->new_sock;
cmd_is($p, "version\r\n", $VERSION);
my $active = $srv->new_sock;
my $idle   = $srv->new_sock;
my $quiet  = $srv->new_sock;
is(stats($active, 'settings')->{idle_timeout}, 2, 'stats settings: idle_timeout');
cmd_is($idle, "version\r\n", $VERSION, 'idle connection answered once');
cmd_is($quiet, "set k 0 0 1\r\nv\r\n", "STORED\r\n");

# Keep $active busy while waiting for $sock to be closed (up to $limit
# seconds after $t0); returns when it closed, in seconds after $t0, and
# what it received before.
sub wait_closed {
    my ($sock, $t0, $limit) = @_;
    my $got = '';
    while (time - $t0 < $limit) {
        cmd_is($active, "version\r\n", $VERSION, 'active connection answers')
            or last;
        my ($data, $eof) = read_available($sock, 0.25);
        $got .= $data;
        return (time - $t0, $got) if $eof;
    }
    return (undef, $got);
}

my $t0 = time;
my ($closed_at, $got) = wait_closed($idle, $t0, 12);
ok(defined $closed_at, 'the idle connection was closed')
    and cmp_ok($closed_at, '>=', 1.5, "not before the timeout (after ${closed_at}s)");
is($got, '', 'it was closed without a message');
cmd_is($active, "get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n", 'the active connection is still open');
# $quiet went idle a moment after $idle, maybe in the next second, and its
# worker thread checks once a second on its own schedule: it may close a
# second or two later.
my ($quiet_at) = wait_closed($quiet, $t0, 12 + 3 * timeout_scale());
ok(defined $quiet_at, 'the other idle connection was closed too');
my $st = stats($active);
cmp_ok($st->{idle_kicks} // 0, '>=', 2, 'idle_kicks counts the closed connections');

my ($pd, $peof) = read_available($p, 0.1);
ok(!$peof, 'without idle_timeout an idle connection stays open');
cmd_is($p, "version\r\n", $VERSION, 'and answers');

done_testing;
