#!/usr/bin/perl
# flush_all: immediate, delayed (relative and absolute time), noreply, the
# items stored after it, bad arguments, and -F.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

cmd_is($sock, "set foo 0 0 3\r\nbar\r\nset baz 0 0 1\r\nz\r\n", "STORED\r\nSTORED\r\n");
cmd_is($sock, "flush_all\r\n", "OK\r\n", 'flush_all');
cmd_is($sock, "get foo baz\r\n", "END\r\n", 'everything is gone');
cmd_is($sock, "set foo 0 0 3\r\nnew\r\n", "STORED\r\n", 'set right after flush_all');
mem_get_is($sock, 'foo', 'new', name => 'an item stored after flush_all is visible');
cmd_is($sock, "add baz 0 0 1\r\nz\r\n", "STORED\r\n", 'add of a flushed key works');
cmd_is($sock, "flush_all 0\r\n", "OK\r\n", 'flush_all 0');
mem_get_is($sock, 'foo', undef, name => 'flush_all 0 is immediate');
cmd_is($sock, "set foo 0 0 1\r\n1\r\nflush_all noreply\r\nget foo\r\n", "STORED\r\nEND\r\n",
       'flush_all noreply');
cmd_is($sock, "set foo 0 0 1\r\n1\r\nflush_all 0 noreply\r\nget foo\r\n", "STORED\r\nEND\r\n",
       'flush_all 0 noreply');
cmd_is($sock, "replace foo 0 0 1\r\nx\r\n", "NOT_STORED\r\n", 'replace of a flushed key fails');
cmd_is($sock, "incr foo 1\r\n", "NOT_FOUND\r\n", 'incr of a flushed key');

# Bad arguments.
cmd_is($sock, "flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'non-numeric delay');
cmd_is($sock, "flush_all 99999999999999999999\r\n", "CLIENT_ERROR invalid exptime argument\r\n",
       'delay out of range');
cmd_is($sock, "flush_all 1 2 3\r\n", "ERROR\r\n", 'too many arguments');

my $st = stats($sock);
# (memcached also counts the ones rejected for a bad delay.)
cmp_ok($st->{cmd_flush}, '>=', 4, 'cmd_flush counts the flushes');

# Delayed flush, relative and absolute: items stay until the time comes,
# including those stored in between.  Like memcached's, a delayed flush
# takes effect one second early, at the server clock's step into its last
# second; a delay of N leaves at least N - 2 s, so 4 leaves the checks
# below enough time even on a slow machine.
cmd_is($sock, "set early 0 0 1\r\ne\r\n", "STORED\r\n");
cmd_is($sock, "flush_all 4\r\n", "OK\r\n", 'flush_all 4');
cmd_is($sock, "set later 0 0 1\r\nl\r\n", "STORED\r\n");
my $h = mem_get_multi($sock, [qw(early later)]);
is(join(',', sort keys %$h), 'early,later', 'items are still there before the delay');
ok(wait_until(sub { !%{ mem_get_multi($sock, [qw(early later)]) } }, 8 * timeout_scale()),
   'items stored before the delay ran out are flushed');
# The clock has a one-second granularity: step past the flush's second.
my $flushed_at = time;
wait_until(sub { time - $flushed_at > 1.1 }, 3, 0.1);
cmd_is($sock, "set after 0 0 1\r\na\r\n", "STORED\r\n");
mem_get_is($sock, 'after', 'a', name => 'an item stored after a delayed flush ran is visible');

my $srv2 = start_server();
my $s2 = $srv2->new_sock;
cmd_is($s2, "set abs 0 0 1\r\na\r\n", "STORED\r\n");
my $when = int(time) + 4;
cmd_is($s2, "flush_all $when\r\n", "OK\r\n", 'flush_all at an absolute unix time');
mem_get_is($s2, 'abs', 'a', name => 'item still there before that time');
ok(wait_until(sub { !%{ mem_get_multi($s2, ['abs']) } }, 8 * timeout_scale()),
   'item flushed once that time passed');

# -F disables the command.
my $nf = start_server('-F');
my $ns = $nf->new_sock;
cmd_is($ns, "set foo 0 0 1\r\n1\r\n", "STORED\r\n");
cmd_is($ns, "flush_all\r\n", "CLIENT_ERROR flush_all not allowed\r\n", 'flush_all with -F');
cmd_is($ns, "flush_all 0\r\n", "CLIENT_ERROR flush_all not allowed\r\n", 'flush_all 0 with -F');
mem_get_is($ns, 'foo', '1', name => 'nothing was flushed');
is(stats($ns, 'settings')->{flush_enabled}, 'no', 'stats settings: flush_enabled no');

done_testing;
