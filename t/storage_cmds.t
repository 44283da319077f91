#!/usr/bin/perl
# Storage commands: set, add, replace, append, prepend; flags, empty and
# binary values, key length limits, and the answers for each outcome.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

# set stores and overwrites.
cmd_is($sock, "set foo 0 0 3\r\nbar\r\n", "STORED\r\n", 'set a new key');
mem_get_is($sock, 'foo', 'bar');
cmd_is($sock, "set foo 7 0 4\r\nbarz\r\n", "STORED\r\n", 'set overwrites');
mem_get_is($sock, 'foo', 'barz', flags => 7, name => 'overwritten value and flags');

# add only stores a missing key.
cmd_is($sock, "add foo 0 0 3\r\nnew\r\n", "NOT_STORED\r\n", 'add on an existing key');
mem_get_is($sock, 'foo', 'barz', flags => 7, name => 'failed add left the value');
cmd_is($sock, "add addkey 3 0 3\r\nnew\r\n", "STORED\r\n", 'add on a missing key');
mem_get_is($sock, 'addkey', 'new', flags => 3);

# replace only stores an existing key.
cmd_is($sock, "replace nokey 0 0 1\r\nx\r\n", "NOT_STORED\r\n", 'replace on a missing key');
mem_get_is($sock, 'nokey', undef, name => 'failed replace created nothing');
cmd_is($sock, "replace foo 1 0 5\r\nrepla\r\n", "STORED\r\n", 'replace on an existing key');
mem_get_is($sock, 'foo', 'repla', flags => 1);

# append / prepend keep the flags and fail on a missing key.
cmd_is($sock, "set ap 42 0 3\r\nmid\r\n", "STORED\r\n");
cmd_is($sock, "append ap 0 0 4\r\n_end\r\n", "STORED\r\n", 'append');
cmd_is($sock, "prepend ap 9 0 6\r\nstart_\r\n", "STORED\r\n", 'prepend');
mem_get_is($sock, 'ap', 'start_mid_end', flags => 42, name => 'append/prepend keep the original flags');
cmd_is($sock, "append nokey 0 0 1\r\nx\r\n", "NOT_STORED\r\n", 'append on a missing key');
cmd_is($sock, "prepend nokey 0 0 1\r\nx\r\n", "NOT_STORED\r\n", 'prepend on a missing key');
mem_get_is($sock, 'nokey', undef);
cmd_is($sock, "append ap 0 0 0\r\n\r\n", "STORED\r\n", 'append of nothing');
mem_get_is($sock, 'ap', 'start_mid_end', flags => 42);

# Flags: the full 32-bit range round-trips.
for my $flags (0, 1, 65535, 65536, 2147483648, 4294967295) {
    cmd_is($sock, "set fl $flags 0 1\r\nx\r\n", "STORED\r\n", "set with flags $flags");
    mem_get_is($sock, 'fl', 'x', flags => $flags, name => "flags $flags come back");
}

# Empty value.
cmd_is($sock, "set empty 0 0 0\r\n\r\n", "STORED\r\n", 'zero-length value');
cmd_is($sock, "get empty\r\n", "VALUE empty 0 0\r\n\r\nEND\r\n", 'zero-length value comes back');

# Values are opaque bytes: CR, LF, NUL, "END\r\n" and high bytes survive.
my $bin = join '', map { chr } 0 .. 255;
$bin .= "\r\nEND\r\n\r\n\0";
cmd_is($sock, "set binval 0 0 " . length($bin) . "\r\n$bin\r\n", "STORED\r\n", 'binary value');
mem_get_is($sock, 'binval', $bin, name => 'binary value comes back intact');

# Keys: up to 250 bytes, any byte but space and control characters.
my $k250 = 'k' x 250;
cmd_is($sock, "set $k250 0 0 1\r\nx\r\n", "STORED\r\n", '250-byte key');
mem_get_is($sock, $k250, 'x', name => 'get 250-byte key');
my $punct = q{!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~};
cmd_is($sock, "set $punct 0 0 1\r\np\r\n", "STORED\r\n", 'key of punctuation');
mem_get_is($sock, $punct, 'p');
my $utf8 = "cl\xc3\xa9\xe2\x82\xac";
cmd_is($sock, "set $utf8 0 0 1\r\nu\r\n", "STORED\r\n", 'key with UTF-8 bytes');
mem_get_is($sock, $utf8, 'u');

# Keys are case sensitive.
cmd_is($sock, "set Case 0 0 1\r\nA\r\n", "STORED\r\n");
cmd_is($sock, "set case 0 0 1\r\nb\r\n", "STORED\r\n");
mem_get_is($sock, 'Case', 'A');
mem_get_is($sock, 'case', 'b');

# Several spaces between tokens are one separator.
cmd_is($sock, "set  spaced   5  0   2\r\nsp\r\n", "STORED\r\n", 'extra spaces in the command line');
mem_get_is($sock, 'spaced', 'sp', flags => 5);

# A bare "\n" ends a command line too.
cmd_is($sock, "set lf 0 0 2\nlf\r\n", "STORED\r\n", 'command line ended by LF alone');
cmd_is($sock, "get lf\n", "VALUE lf 0 2\r\nlf\r\nEND\r\n", 'get ended by LF alone');

# get of several keys answers the hits in request order, skipping misses.
cmd_is($sock, "get foo nokey addkey foo\r\n",
       "VALUE foo 1 5\r\nrepla\r\nVALUE addkey 3 3\r\nnew\r\nVALUE foo 1 5\r\nrepla\r\nEND\r\n",
       'multi-key get: hits in order, misses skipped, repeats repeated');

# Stored values survive across connections.
my $other = $srv->new_sock;
mem_get_is($other, 'foo', 'repla', flags => 1, name => 'value visible from another connection');

# A value of 100 KB in one piece.
my $big = join '', map { chr(65 + $_ % 26) } 1 .. 100_000;
cmd_is($sock, "set big 0 0 100000\r\n$big\r\n", "STORED\r\n", '100 KB value');
mem_get_is($sock, 'big', $big, name => '100 KB value comes back');

done_testing;
