#!/usr/bin/perl
# Bad input gets memcached's exact error line, never a crash, and the
# connection stays usable afterwards (except for an over-long line without
# a newline, which memcached answers by closing the connection).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;
my $VERSION = "VERSION " . expected_version() . "\r\n";
my $FORMAT  = "CLIENT_ERROR bad command line format\r\n";

# Each case: bytes to send, the exact answer.  Every case is followed by a
# "version" to show the stream is still in step (unless a fourth element
# says the case eats it).
my @cases = (
    # Unknown commands and empty lines.
    ["bogus\r\n", "ERROR\r\n", 'unknown command'],
    ["GET foo\r\n", "ERROR\r\n", 'commands are case sensitive'],
    ["\r\n", "ERROR\r\n", 'empty line'],
    ["   \r\n", "ERROR\r\n", 'line of spaces'],
    ["gets\r\n", "ERROR\r\n", 'gets without a key'],
    ["get\r\n", "ERROR\r\n", 'get without a key'],
    ["get \r\n", "ERROR\r\n", 'get and a space'],

    # Storage command line formats.
    ["set\r\n", "ERROR\r\n", 'set alone'],
    ["set foo\r\n", "ERROR\r\n", 'set with a key only'],
    ["set foo 0 0\r\n", "ERROR\r\n", 'set without a length'],
    ["set foo 0 0 1 noreply extra\r\nx\r\n", "ERROR\r\nERROR\r\n", 'set with too many tokens (the data line is then a command)'],
    ["set foo x 0 1\r\n", $FORMAT, 'non-numeric flags'],
    ["set foo -1 0 1\r\n", $FORMAT, 'negative flags'],
    ["set foo 0 x 1\r\n", $FORMAT, 'non-numeric exptime'],
    ["set foo 0 0 x\r\n", $FORMAT, 'non-numeric length'],
    ["set foo 0 0 1x\r\n", $FORMAT, 'length with trailing garbage'],
    ["set foo 0 0 -1\r\n", $FORMAT, 'negative length'],
    ["add foo 0 0 -10\r\n", $FORMAT, 'negative length on add'],
    ["set foo 0 0 2147483648\r\n", $FORMAT, 'length beyond 2^31'],
    ["set foo 0 0 99999999999999999999\r\n", $FORMAT, 'length beyond 2^64'],
    ["set foo 0 0 1\r\nx\r\n", "STORED\r\n", 'a good set between bad ones'],
    ["set foo x 0 1\r\nx\r\n", $FORMAT . "ERROR\r\n", 'bad format: the data line is then read as a command'],

    # Bad data chunks: the declared length plus two bytes is consumed, and
    # they must end in "\r\n".
    ["set foo 0 0 1\r\nxyz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n", 'data longer than declared'],
    ["set foo 0 0 4\r\nx\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
     'data shorter than declared: the next command is eaten as data', 'eats version'],
    ["set foo 0 0 1\r\nx\n\n", "CLIENT_ERROR bad data chunk\r\n", 'data ended by LF LF'],
    ["set foo 0 0 1\r\nx\r\r", "CLIENT_ERROR bad data chunk\r\n", 'data ended by CR CR'],
    ["set foo 0 0 1\r\nxy\n", "CLIENT_ERROR bad data chunk\r\n", 'data ended by LF alone'],
    ["append foo 0 0 1\r\nxyz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n", 'bad data chunk on append'],
    ["cas foo 0 0 1 1\r\nxyz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n", 'bad data chunk on cas'],

    # Keys longer than 250 bytes, on every command that takes a key.
    (map { ["$_\r\n", $FORMAT, "too long key: " . substr($_, 0, 12)] }
        'get ' . ('k' x 251), 'gets ' . ('k' x 251), 'get a ' . ('k' x 251) . ' b',
        'delete ' . ('k' x 251), 'incr ' . ('k' x 251) . ' 1', 'decr ' . ('k' x 251) . ' 1',
        'touch ' . ('k' x 251) . ' 10', 'gat 10 ' . ('k' x 251), 'gats 10 ' . ('k' x 251)),
    ["set " . ('k' x 251) . " 0 0 1\r\nx\r\n", $FORMAT . "ERROR\r\n", 'too long key on set'],
    ["get " . ('k' x 1000) . "\r\n", $FORMAT, '1000-byte key'],

    # Arithmetic.
    ["set n 0 0 1\r\n1\r\n", "STORED\r\n", 'numeric value'],
    ["incr n abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n", 'non-numeric delta'],
    ["decr n -5\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n", 'negative delta'],
    ["incr n 18446744073709551616\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n", 'delta beyond 2^64-1'],
    ["incr foo 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", 'incr of a non-number'],
    ["incr n\r\n", "ERROR\r\n", 'incr without delta'],

    # Other commands.
    ["touch foo abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'touch with a bad exptime'],
    ["gat abc foo\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'gat with a bad exptime'],
    ["delete foo 5\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n", 'delete with a time'],
    ["flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 'flush_all with a bad delay'],
    ["verbosity\r\n", "ERROR\r\n", 'verbosity without a level'],
    ["verbosity abc\r\n", $FORMAT, 'verbosity with a word'],

    # Binary garbage that is not the binary protocol (no 0x80 first byte).
    ["\x00\x01\x02\x03garbage\r\n", "ERROR\r\n", 'control bytes'],
    ["\xff\xfe\xfd\xfc\r\n\x01\x02\r\n", "ERROR\r\nERROR\r\n", 'high bytes, two lines'],
    [join('', map { chr(1 + ($_ * 37) % 254) } 1 .. 1500) =~ s/[\n ]/x/gr . "\r\n", "ERROR\r\n", '1500 random bytes'],
);

for my $c (@cases) {
    my ($send, $answer, $name, $eats_version) = @$c;
    cmd_is($sock, $send . "version\r\n", $answer . ($eats_version ? '' : $VERSION), $name);
}

# Keys with control characters other than space and newline are accepted
# by memcached (the protocol forbids them, the server does not check).
for my $key ("a\x01b", "tab\tkey", "del\x7f") {
    cmd_is($sock, "set $key 0 0 1\r\nc\r\n", "STORED\r\n", 'key with a control character is stored');
    mem_get_is($sock, $key, 'c', name => 'and read back');
}

# A line that is too long without a newline: memcached closes the
# connection without an answer.
my $long = $srv->new_sock;
send_bytes($long, 'x' x 4096);
my ($got, $closed) = read_available($long, 3 * timeout_scale());
is($got, '', 'no answer to a 4 KB line without a newline');
ok($closed, 'the connection is closed');

# A long line that does have its newline is an unknown command.
cmd_is($sock, ('y' x 3000) . "\r\nversion\r\n", "ERROR\r\n" . $VERSION, '3000-byte line with its newline');

# Many clients sending garbage at once do not disturb a good client.
my @bad = map { $srv->new_sock } 1 .. 10;
for my $i (0 .. $#bad) {
    send_bytes($bad[$i], join('', map { chr(1 + ($_ * 13 + $i) % 127) } 1 .. 1000) =~ s/\x80//gr);
}
cmd_is($sock, "get foo\r\n", "VALUE foo 0 1\r\nx\r\nEND\r\n", 'good client unaffected by garbage on others');
close $_ for @bad;

# Still alive and well.
cmd_is($sock, "version\r\n", $VERSION, 'server alive at the end');
my $st = stats($sock);
ok($st && $st->{curr_connections} >= 1, 'stats still answer');

done_testing;
