#!/usr/bin/perl
# delete: DELETED / NOT_FOUND, the legacy "0" time argument, noreply, and
# the usage error for any other argument.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

cmd_is($sock, "delete nokey\r\n", "NOT_FOUND\r\n", 'delete a missing key');
cmd_is($sock, "set foo 0 0 3\r\nbar\r\n", "STORED\r\n");
cmd_is($sock, "delete foo\r\n", "DELETED\r\n", 'delete an existing key');
mem_get_is($sock, 'foo', undef, name => 'deleted key is gone');
cmd_is($sock, "delete foo\r\n", "NOT_FOUND\r\n", 'second delete');

# A deleted key can be added again.
cmd_is($sock, "add foo 0 0 3\r\nnew\r\n", "STORED\r\n", 'add after delete');
mem_get_is($sock, 'foo', 'new');

# The old "delete <key> <time>" form: only 0 is accepted.
cmd_is($sock, "delete foo 0\r\n", "DELETED\r\n", 'delete with time 0');
cmd_is($sock, "set foo 0 0 3\r\nbar\r\n", "STORED\r\n");
my $usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
cmd_is($sock, "delete foo 10\r\n", $usage, 'delete with a non-zero time');
cmd_is($sock, "delete foo abc\r\n", $usage, 'delete with a word');
mem_get_is($sock, 'foo', 'bar', name => 'rejected deletes left the key');
cmd_is($sock, "delete foo 0 0\r\n", $usage, 'delete with two extra numbers');
cmd_is($sock, "delete\r\n", "ERROR\r\n", 'delete without a key');
cmd_is($sock, "delete a b c d\r\n", "ERROR\r\n", 'delete with too many tokens');

# noreply, alone and after the time argument.
cmd_is($sock, "delete foo noreply\r\nget foo\r\n", "END\r\n", 'delete noreply');
cmd_is($sock, "set foo 0 0 3\r\nbar\r\n", "STORED\r\n");
cmd_is($sock, "delete foo 0 noreply\r\ndelete nokey noreply\r\nget foo\r\n", "END\r\n",
       'delete 0 noreply, and a silent miss');

# Deleting one key leaves the others.
cmd_is($sock, "set k1 0 0 1\r\n1\r\nset k2 0 0 1\r\n2\r\n", "STORED\r\nSTORED\r\n");
cmd_is($sock, "delete k1\r\n", "DELETED\r\n");
cmd_is($sock, "get k1 k2\r\n", "VALUE k2 0 1\r\n2\r\nEND\r\n", 'other keys survive a delete');

# A deleted key is gone for every connection.
my $other = $srv->new_sock;
mem_get_is($other, 'k1', undef, name => 'delete seen from another connection');

# delete of an expired item is a miss.
cmd_is($sock, "set gone 0 -1 1\r\nx\r\n", "STORED\r\n");
cmd_is($sock, "delete gone\r\n", "NOT_FOUND\r\n", 'delete of an already expired item');

done_testing;
