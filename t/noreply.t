#!/usr/bin/perl
# noreply: every command that takes it answers nothing, yet takes effect;
# the stream stays in step, including after a too-large value.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

my $batch = join '',
    "set a 1 0 1 noreply\r\na\r\n",
    "add b 2 0 1 noreply\r\nb\r\n",
    "add a 0 0 1 noreply\r\nX\r\n",          # fails silently
    "replace a 3 0 2 noreply\r\naa\r\n",
    "replace nokey 0 0 1 noreply\r\nX\r\n",  # fails silently
    "append a 0 0 1 noreply\r\n+\r\n",
    "prepend a 0 0 1 noreply\r\n-\r\n",
    "append nokey 0 0 1 noreply\r\nX\r\n",   # fails silently
    "set n 0 0 2 noreply\r\n10\r\n",
    "incr n 5 noreply\r\n",
    "decr n 2 noreply\r\n",
    "incr nokey 1 noreply\r\n",              # miss, silently
    "set d 0 0 1 noreply\r\nd\r\n",
    "delete d noreply\r\n",
    "delete nokey noreply\r\n",
    "touch a 1000 noreply\r\n",
    "verbosity 0 noreply\r\n";
send_bytes($sock, $batch);
cmd_is($sock, "get a b n d nokey\r\n",
       "VALUE a 3 4\r\n-aa+\r\nVALUE b 2 1\r\nb\r\nVALUE n 0 2\r\n13\r\nEND\r\n",
       'a batch of noreply commands answered nothing and took effect');

my (undef, $cas) = mem_gets($sock, 'b');
cmd_is($sock, "cas b 0 0 2 $cas noreply\r\nb2\r\ncas b 0 0 2 $cas noreply\r\nb3\r\ncas nokey 0 0 1 1 noreply\r\nx\r\nget b\r\n",
       "VALUE b 0 2\r\nb2\r\nEND\r\n", 'cas noreply: hit, stale and miss all silent');

# Errors about the value are silent under noreply too, and the data of a
# too-large value is swallowed: the next command is in step.
my $big = 'x' x (2 * 1024 * 1024);
cmd_is($sock, "set big 0 0 " . length($big) . " noreply\r\n$big\r\nget a\r\n",
       "VALUE a 3 4\r\n-aa+\r\nEND\r\n", 'too large value with noreply: silent, data swallowed');
cmd_is($sock, "set nn 0 0 1 noreply\r\nx\r\nincr nn 1 noreply\r\nget nn\r\n", "VALUE nn 0 1\r\nx\r\nEND\r\n",
       'incr of a non-number with noreply is silent');

# "noreply" in a get is just a key.
cmd_is($sock, "get a noreply\r\n", "VALUE a 3 4\r\n-aa+\r\nEND\r\n", 'get treats noreply as a key');

# Without noreply the same connection answers again.
cmd_is($sock, "set c 0 0 1\r\nc\r\n", "STORED\r\n", 'answers resume without noreply');

# Many noreply sets in one write, then one answer.
send_bytes($sock, join '', map { "set k$_ 0 0 " . length($_) . " noreply\r\n$_\r\n" } 1 .. 2000);
my $h = mem_get_multi($sock, [map { "k$_" } 1 .. 2000]);
is(scalar(keys %$h), 2000, '2000 noreply sets all stored');
is(scalar(grep { $h->{"k$_"}{value} ne $_ } 1 .. 2000), 0, 'with the right values');
no_more_data($sock, 'nothing else was sent');

done_testing;
