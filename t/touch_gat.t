#!/usr/bin/perl
# touch, gat and gats: they change an item's expiry without changing its
# value, flags or unique; gat/gats also return the item.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

cmd_is($sock, "touch nokey 10\r\n", "NOT_FOUND\r\n", 'touch on a missing key');
cmd_is($sock, "gat 10 nokey\r\n", "END\r\n", 'gat on a missing key');
cmd_is($sock, "gats 10 nokey\r\n", "END\r\n", 'gats on a missing key');

cmd_is($sock, "set foo 12 0 3\r\nbar\r\n", "STORED\r\n");
my (undef, $cas) = mem_gets($sock, 'foo');
cmd_is($sock, "touch foo 100\r\n", "TOUCHED\r\n", 'touch on an existing key');
cmd_is($sock, "gat 100 foo\r\n", "VALUE foo 12 3\r\nbar\r\nEND\r\n", 'gat returns value and flags');
cmd_is($sock, "gats 100 foo\r\n", "VALUE foo 12 3 $cas\r\nbar\r\nEND\r\n",
       'gats returns the unique, unchanged by touch and gat');
cmd_is($sock, "touch foo 100 noreply\r\ntouch nokey 1 noreply\r\nget foo\r\n",
       "VALUE foo 12 3\r\nbar\r\nEND\r\n", 'touch noreply is silent');

# gat with several keys answers the hits in order.
cmd_is($sock, "set bar 0 0 1\r\nb\r\n", "STORED\r\n");
cmd_is($sock, "gat 100 foo nokey bar\r\n",
       "VALUE foo 12 3\r\nbar\r\nVALUE bar 0 1\r\nb\r\nEND\r\n", 'gat of several keys');

# Bad lines.
cmd_is($sock, "touch foo\r\n", "ERROR\r\n", 'touch without exptime');
cmd_is($sock, "touch\r\n", "ERROR\r\n", 'touch alone');
cmd_is($sock, "touch foo abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'touch with a bad exptime');
cmd_is($sock, "touch foo 1.5\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'touch with a fractional exptime');
cmd_is($sock, "gat foo\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'gat without exptime');
cmd_is($sock, "gat abc foo\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'gat with a bad exptime');
cmd_is($sock, "gat\r\n", "ERROR\r\n", 'gat alone');
cmd_is($sock, "gats\r\n", "ERROR\r\n", 'gats alone');
mem_get_is($sock, 'foo', 'bar', flags => 12, name => 'bad touches changed nothing');

# A negative exptime expires the item at once; gat still returns it once.
cmd_is($sock, "set neg 0 0 1\r\nn\r\n", "STORED\r\n");
cmd_is($sock, "touch neg -1\r\n", "TOUCHED\r\n", 'touch with a negative exptime');
mem_get_is($sock, 'neg', undef, name => 'touched to a negative exptime: gone');
cmd_is($sock, "set neg 0 0 1\r\nn\r\n", "STORED\r\n");
cmd_is($sock, "gat -1 neg\r\n", "VALUE neg 0 1\r\nn\r\nEND\r\n", 'gat with a negative exptime returns the item');
mem_get_is($sock, 'neg', undef, name => '... and it is gone afterwards');

# Expiry changes: shorten (100 -> 1) and lengthen (3 -> never / 100).
# (An exptime of 3 lives at least 2 s on the server's whole-second clock:
# the touches below reach the items in time even on a slow machine.)
my $t0 = time;
cmd_is($sock, "set short_t 0 100 1\r\na\r\n", "STORED\r\n");
cmd_is($sock, "set short_g 0 100 1\r\nb\r\n", "STORED\r\n");
cmd_is($sock, "set long_t 0 3 1\r\nc\r\n", "STORED\r\n");
cmd_is($sock, "set long_g 0 3 1\r\nd\r\n", "STORED\r\n");
cmd_is($sock, "set long_gs 0 3 1\r\ne\r\n", "STORED\r\n");
cmd_is($sock, "touch short_t 1\r\n", "TOUCHED\r\n");
cmd_is($sock, "gat 1 short_g\r\n", "VALUE short_g 0 1\r\nb\r\nEND\r\n");
cmd_is($sock, "touch long_t 0\r\n", "TOUCHED\r\n");
cmd_is($sock, "gat 0 long_g\r\n", "VALUE long_g 0 1\r\nd\r\nEND\r\n");
cmd_like($sock, "gats 100 long_gs\r\n", qr/^VALUE long_gs 0 1 \d+\r\n/);
expect_is($sock, "e\r\nEND\r\n");

ok(wait_until(sub { !%{ mem_get_multi($sock, [qw(short_t short_g)]) } }, 5 * timeout_scale()),
   'items touched to 1 s expire');
# Past the original 3 s expiry (with a second of clock granularity).
wait_until(sub { time - $t0 > 4.5 }, 10, 0.1);
my $h = mem_get_multi($sock, [qw(long_t long_g long_gs)]);
is(join(',', sort keys %$h), 'long_g,long_gs,long_t', 'items touched to a longer expiry outlive the old one');

done_testing;
