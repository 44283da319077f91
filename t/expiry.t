#!/usr/bin/perl
# Expiry times: relative seconds, absolute unix times (anything above 30
# days), negative values, 0 = never, and expired items acting as missing
# for every command.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;
my $thirty_days = 60 * 60 * 24 * 30;

# Already expired when stored: negative, or an absolute time in the past
# (a "relative" value just over 30 days is a date in January 1970).
for my $exp (-1, -1000, $thirty_days + 1, int(time) - 10) {
    cmd_is($sock, "set past 0 $exp 1\r\nx\r\n", "STORED\r\n", "set with exptime $exp answers STORED");
    mem_get_is($sock, 'past', undef, name => "exptime $exp: expired at once");
}
cmd_is($sock, "add past 0 0 1\r\ny\r\n", "STORED\r\n", 'add over an expired item');
mem_get_is($sock, 'past', 'y');

# Far future, as relative and absolute times.
cmd_is($sock, "set rel30 0 $thirty_days 1\r\nr\r\n", "STORED\r\n", 'exptime of exactly 30 days is relative');
mem_get_is($sock, 'rel30', 'r');
my $future = int(time) + 3600;
cmd_is($sock, "set absf 0 $future 1\r\na\r\n", "STORED\r\n", 'absolute exptime an hour ahead');
mem_get_is($sock, 'absf', 'a');
cmd_is($sock, "set never 0 0 1\r\nn\r\n", "STORED\r\n");

# Bad exptime values.
cmd_is($sock, "set bad 0 abc 1\r\n", "CLIENT_ERROR bad command line format\r\n", 'non-numeric exptime');
cmd_is($sock, "set bad 0 1.5 1\r\n", "CLIENT_ERROR bad command line format\r\n", 'fractional exptime');

# Short lifetimes, relative and absolute, all watched together.  The
# server's clock steps at whole seconds, so an item stored with exptime 3
# lives between 2 and 3 s: long enough for the checks below that expect
# it to be there still, even on a slow machine.
my $t0 = time;
my $abs = int($t0) + 3;
cmd_is($sock, "set rel2 0 3 1\r\n2\r\n", "STORED\r\n");
cmd_is($sock, "set abs2 0 $abs 1\r\n3\r\n", "STORED\r\n");
cmd_is($sock, "set cnt 0 3 1\r\n5\r\n", "STORED\r\n");
cmd_is($sock, "set app 0 3 1\r\na\r\n", "STORED\r\n");
cmd_is($sock, "set del 0 3 1\r\nd\r\n", "STORED\r\n");
cmd_is($sock, "set tch 0 3 1\r\nt\r\n", "STORED\r\n");
cmd_is($sock, "set gts 0 3 1\r\ng\r\n", "STORED\r\n");
my (undef, $cas) = mem_gets($sock, 'gts');
my $h = mem_get_multi($sock, [qw(rel2 abs2 cnt)]);
is(join(',', sort keys %$h), 'abs2,cnt,rel2', 'short-lived items are there at first');
# Changing an item keeps its expiry.
cmd_is($sock, "incr cnt 1\r\n", "6\r\n");
cmd_is($sock, "append app 0 0 1\r\nb\r\n", "STORED\r\n");

ok(wait_until(sub { !%{ mem_get_multi($sock, [qw(rel2 abs2 cnt app)]) } }, 6 * timeout_scale()),
   'relative, absolute, incremented and appended items all expire');
my $took = time - $t0;
cmp_ok($took, '>', 1.5, "not before their time (${took}s)");
cmp_ok($took, '<', 5.5, "and close to it (${took}s)");

# An expired item is a miss for every command.
cmd_is($sock, "incr cnt 1\r\n", "NOT_FOUND\r\n", 'incr on an expired item');
cmd_is($sock, "append app 0 0 1\r\nc\r\n", "NOT_STORED\r\n", 'append on an expired item');
cmd_is($sock, "replace rel2 0 0 1\r\nx\r\n", "NOT_STORED\r\n", 'replace on an expired item');
cmd_is($sock, "delete del\r\n", "NOT_FOUND\r\n", 'delete of an expired item');
cmd_is($sock, "touch tch 100\r\n", "NOT_FOUND\r\n", 'touch of an expired item');
cmd_is($sock, "cas gts 0 0 1 $cas\r\nx\r\n", "NOT_FOUND\r\n", 'cas on an expired item');
cmd_is($sock, "gat 100 gts\r\n", "END\r\n", 'gat of an expired item');
cmd_is($sock, "add rel2 0 0 1\r\nz\r\n", "STORED\r\n", 'add over an expired item');
mem_get_is($sock, 'rel2', 'z');

# The long-lived ones are still there.
$h = mem_get_multi($sock, [qw(rel30 absf never)]);
is(join(',', sort keys %$h), 'absf,never,rel30', 'long-lived items are untouched');

my $st = stats($sock);
cmp_ok($st->{get_expired}, '>=', 1, 'get_expired counts gets of expired items');

done_testing;
