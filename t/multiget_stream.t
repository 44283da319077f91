#!/usr/bin/perl
# Multi-key gets: long key lists (far beyond one read buffer), key lists
# arriving in pieces, and thousands of large values streamed back intact.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use MemcachedTest;

my $srv  = start_server('-m 256');
my $sock = $srv->new_sock;

# Value for key number $i: distinct content and length per key, so a value
# handed back under the wrong key or cut short is caught.
sub value_for {
    my ($i, $len) = @_;
    my $unit = sprintf('<%06d>', $i);
    my $v = $unit x int($len / length($unit) + 1);
    return substr($v, 0, $len);
}

# 3000 keys of 10..30 KB (about 60 MB in one answer).
my $n = 3000;
my @keys = map { "key:$_:" . ('x' x ($_ % 40)) } 1 .. $n;
my %want;
my $stored = 0;
for my $i (1 .. $n) {
    my $v = value_for($i, 10_000 + ($i * 7919) % 20_000);
    $want{ $keys[$i - 1] } = $v;
    send_bytes($sock, "set $keys[$i - 1] $i 0 " . length($v) . " noreply\r\n$v\r\n");
}
cmd_is($sock, "version\r\n", "VERSION " . expected_version() . "\r\n", 'all sets sent');
is(stats($sock)->{curr_items}, $n, "$n items stored");

my $h = mem_get_multi($sock, \@keys);
ok($h, 'one get of all keys answered completely');
is(scalar(keys %{ $h || {} }), $n, "all $n values returned");
my @wrong = grep { !$h->{$_} || $h->{$_}{value} ne $want{$_} } @keys;
is(scalar(@wrong), 0, 'every value is intact') or diag("first wrong: $wrong[0]");
my ($i_bad) = grep { $h->{ $keys[$_ - 1] }{flags} != $_ } 1 .. $n;
ok(!$i_bad, 'every item has its own flags');

# The order of the answer is the order of the request.
my @sample = @keys[map { ($_ * 37) % $n } 0 .. 199];
send_bytes($sock, "get @sample\r\n");
my @order;
while (defined(my $line = read_line($sock))) {
    last if $line eq "END\r\n";
    my ($k, $len) = $line =~ /^VALUE (\S+) \d+ (\d+)\r\n/ or last;
    push @order, $k;
    read_bytes($sock, $len + 2);
}
is_deeply(\@order, \@sample, 'values come back in request order');

# gets of all keys carries uniques.
my $g = mem_get_multi($sock, [@keys[0 .. 999]], 'gets');
is(scalar(grep { defined $g->{$_}{cas} && $g->{$_}{cas} =~ /^[1-9]\d*$/ } @keys[0 .. 999]), 1000,
   'gets of 1000 keys: every value has a unique');

# Hits and misses interleaved, with repeats.
my @mixed = map { ($keys[$_], "miss$_", $keys[$_]) } 0 .. 499;
my $m = mem_get_multi($sock, \@mixed);
is(scalar(keys %$m), 500, 'misses are skipped among hits');

# A 100 KB get line sent in small pieces with pauses.
my $line = "get " . join(' ', map { "miss$_" } 1 .. 10_000) . " $keys[0]\r\n";
for (my $off = 0; $off < length $line; $off += 7001) {
    send_bytes($sock, substr($line, $off, 7001));
    sleep 0.005;
}
expect_is($sock, "VALUE $keys[0] 1 " . length($want{ $keys[0] }) . "\r\n$want{$keys[0]}\r\nEND\r\n",
          'long get line arriving in pieces');

# A long key list whose last key is too long is rejected, and the
# connection stays usable.
cmd_is($sock, "get " . join(' ', map { "miss$_" } 1 .. 1000) . ' ' . ('k' x 251) . "\r\n",
       "CLIENT_ERROR bad command line format\r\n", 'too long key at the end of a long get');
cmd_is($sock, "get $keys[1]\r\n", "VALUE $keys[1] 2 " . length($want{ $keys[1] }) . "\r\n$want{$keys[1]}\r\nEND\r\n",
       'connection in step afterwards');

# Two clients fetching everything at once both get complete answers.
my @c = map { $srv->new_sock } 1 .. 2;
send_bytes($_, "get @keys[0 .. 1499]\r\n") for @c;
for my $k (0 .. 1) {
    my $r = {};
    while (defined(my $l = read_line($c[$k]))) {
        last if $l eq "END\r\n";
        my ($key, $len) = $l =~ /^VALUE (\S+) \d+ (\d+)\r\n/ or last;
        my $d = read_bytes($c[$k], $len + 2);
        $r->{$key} = substr($d, 0, $len) if defined $d;
    }
    is(scalar(grep { defined $r->{$_} && $r->{$_} eq $want{$_} } @keys[0 .. 1499]), 1500,
       "concurrent client $k got all 1500 values intact");
}

done_testing;
