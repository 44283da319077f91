#!/usr/bin/perl
# incr / decr: 64-bit unsigned arithmetic on decimal values, wrap-around on
# incr, floor at 0 on decr, and the error lines for bad values and deltas.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

# A decimal value read back after arithmetic: memcached may keep the old
# length and pad with spaces when the number gets shorter.
sub num_is {
    my ($key, $num, $flags, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $h = mem_get_multi($sock, [$key]);
    ok($h && $h->{$key} && $h->{$key}{value} =~ /^\Q$num\E *\z/ && $h->{$key}{flags} == $flags,
       $name) or diag(explain($h));
}

cmd_is($sock, "incr nokey 1\r\n", "NOT_FOUND\r\n", 'incr on a missing key');
cmd_is($sock, "decr nokey 1\r\n", "NOT_FOUND\r\n", 'decr on a missing key');
mem_get_is($sock, 'nokey', undef, name => 'incr does not create the key');

cmd_is($sock, "set num 5 0 1\r\n1\r\n", "STORED\r\n");
cmd_is($sock, "incr num 1\r\n", "2\r\n", 'incr 1');
cmd_is($sock, "incr num 8\r\n", "10\r\n", 'incr that adds a digit');
mem_get_is($sock, 'num', '10', flags => 5, name => 'value grew to two digits, flags kept');
cmd_is($sock, "incr num 0\r\n", "10\r\n", 'incr 0');
cmd_is($sock, "decr num 1\r\n", "9\r\n", 'decr 1');
num_is('num', 9, 5, 'value after a decr that drops a digit');
cmd_is($sock, "decr num 100\r\n", "0\r\n", 'decr below zero stops at 0');
cmd_is($sock, "decr num 1\r\n", "0\r\n", 'decr of 0 stays 0');
num_is('num', 0, 5, 'value is 0');

# The full 64-bit range; incr wraps, decr does not.
my $max = '18446744073709551615';
cmd_is($sock, "set big 0 0 20\r\n18446744073709551614\r\n", "STORED\r\n");
cmd_is($sock, "incr big 1\r\n", "$max\r\n", 'incr up to 2^64-1');
cmd_is($sock, "incr big 1\r\n", "0\r\n", 'incr past 2^64-1 wraps to 0');
cmd_is($sock, "incr big 3\r\n", "3\r\n", 'incr after the wrap');
cmd_is($sock, "incr big $max\r\n", "2\r\n", 'incr by 2^64-1 wraps');
cmd_is($sock, "decr big $max\r\n", "0\r\n", 'decr by 2^64-1 stops at 0');
cmd_is($sock, "set big 0 0 20\r\n$max\r\n", "STORED\r\n");
cmd_is($sock, "decr big 1\r\n", "18446744073709551614\r\n", 'decr from 2^64-1');

# Values that are not numbers.
for my $v ('abc', '-1', '1a', 'x12', '999999999999999999999', '') {
    my $len = length $v;
    cmd_is($sock, "set nan 0 0 $len\r\n$v\r\n", "STORED\r\n");
    cmd_is($sock, "incr nan 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
           "incr on the value '$v'");
    cmd_is($sock, "decr nan 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
           "decr on the value '$v'");
    mem_get_is($sock, 'nan', $v, name => "value '$v' unchanged");
}

# Numbers with leading zeros or a trailing space are numbers.
cmd_is($sock, "set lead 0 0 3\r\n007\r\n", "STORED\r\n");
cmd_is($sock, "incr lead 1\r\n", "8\r\n", 'incr on a value with leading zeros');
cmd_is($sock, "set trail 0 0 3\r\n12 \r\n", "STORED\r\n");
cmd_is($sock, "incr trail 1\r\n", "13\r\n", 'incr on a value with a trailing space');

# Bad deltas.
cmd_is($sock, "set num 0 0 1\r\n5\r\n", "STORED\r\n");
for my $d ('abc', '-1', '1.5', '0x10', '1a', '18446744073709551616', '99999999999999999999999') {
    cmd_is($sock, "incr num $d\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n", "incr by '$d'");
    cmd_is($sock, "decr num $d\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n", "decr by '$d'");
}
cmd_is($sock, "incr num\r\n", "ERROR\r\n", 'incr without a delta');
cmd_is($sock, "decr\r\n", "ERROR\r\n", 'decr without anything');
cmd_is($sock, "incr num 1 2 3\r\n", "ERROR\r\n", 'incr with too many tokens');
mem_get_is($sock, 'num', '5', name => 'bad deltas changed nothing');

# A bad delta is checked even for a missing key.
cmd_is($sock, "incr nokey abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n",
       'bad delta on a missing key');

# noreply.
cmd_is($sock, "incr num 10 noreply\r\ndecr num 3 noreply\r\nincr nokey 1 noreply\r\nget num\r\n",
       "VALUE num 0 2\r\n12\r\nEND\r\n", 'incr/decr noreply apply silently');

# Arithmetic does not change expiry or flags, and works on appended digits.
cmd_is($sock, "set cnt 77 0 1\r\n9\r\n", "STORED\r\n");
cmd_is($sock, "append cnt 0 0 1\r\n9\r\n", "STORED\r\n");
cmd_is($sock, "incr cnt 1\r\n", "100\r\n", 'incr on an appended number');
mem_get_is($sock, 'cnt', '100', flags => 77);

# Many increments from several connections add up.
my @socks = map { $srv->new_sock } 1 .. 4;
cmd_is($sock, "set hits 0 0 1\r\n0\r\n", "STORED\r\n");
for my $s (@socks) {
    send_bytes($s, "incr hits 1 noreply\r\n" x 250);
}
for my $s (@socks) {
    cmd_is($s, "version\r\n", "VERSION " . expected_version() . "\r\n");
}
mem_get_is($sock, 'hits', '1000', name => '1000 increments from 4 connections');

done_testing;
