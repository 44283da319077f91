#!/usr/bin/perl
# gets / cas: unique values, the EXISTS / NOT_FOUND / STORED outcomes, what
# changes the unique, cas with noreply, and -C (CAS disabled).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

cmd_is($sock, "cas nokey 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n", 'cas on a missing key');
mem_get_is($sock, 'nokey', undef, name => 'failed cas created nothing');

cmd_is($sock, "set foo 3 0 3\r\nbar\r\n", "STORED\r\n");
my ($val, $cas, $flags) = mem_gets($sock, 'foo');
is($val, 'bar', 'gets returns the value');
is($flags, 3, 'gets returns the flags');
like($cas, qr/^[1-9]\d*$/, 'gets returns a non-zero unique');
cmd_like($sock, "gets foo\r\n", qr/^VALUE foo 3 3 $cas\r\n\z/, 'gets answer line carries the unique');
expect_is($sock, "bar\r\nEND\r\n", 'rest of the gets answer');

cmd_is($sock, "cas foo 0 0 3 " . ($cas + 1) . "\r\nnew\r\n", "EXISTS\r\n", 'cas with a stale unique');
mem_get_is($sock, 'foo', 'bar', flags => 3, name => 'EXISTS left the value');
cmd_is($sock, "cas foo 5 0 3 $cas\r\nnew\r\n", "STORED\r\n", 'cas with the current unique');
mem_get_is($sock, 'foo', 'new', flags => 5);
cmd_is($sock, "cas foo 0 0 3 $cas\r\nold\r\n", "EXISTS\r\n", 'the same unique cannot be used twice');

# Every kind of modification gives a new unique; reads and touch do not.
my (undef, $c1) = mem_gets($sock, 'foo');
isnt($c1, $cas, 'cas gave a new unique');
my (undef, $c_again) = mem_gets($sock, 'foo');
is($c_again, $c1, 'gets does not change the unique');
cmd_is($sock, "touch foo 1000\r\n", "TOUCHED\r\n");
my (undef, $c_touch) = mem_gets($sock, 'foo');
is($c_touch, $c1, 'touch does not change the unique');
my %seen = ($cas => 1, $c1 => 1);
for my $step (["set foo 0 0 1\r\n1\r\n", "STORED\r\n", 'set'],
              ["append foo 0 0 1\r\n2\r\n", "STORED\r\n", 'append'],
              ["prepend foo 0 0 1\r\n3\r\n", "STORED\r\n", 'prepend'],
              ["replace foo 0 0 1\r\n4\r\n", "STORED\r\n", 'replace'],
              ["incr foo 5\r\n", "9\r\n", 'incr'],
              ["decr foo 1\r\n", "8\r\n", 'decr']) {
    my ($send, $answer, $what) = @$step;
    cmd_is($sock, $send, $answer, $what);
    my (undef, $c) = mem_gets($sock, 'foo');
    ok(!$seen{$c}++, "$what gives a new unique ($c)");
}

# Uniques differ between keys.
cmd_is($sock, "set a 0 0 1\r\na\r\n", "STORED\r\n");
cmd_is($sock, "set b 0 0 1\r\nb\r\n", "STORED\r\n");
my $h = mem_get_multi($sock, [qw(a b)], 'gets');
isnt($h->{a}{cas}, $h->{b}{cas}, 'two keys have different uniques');

# Deleted then re-added: the old unique is stale.
my (undef, $ca) = mem_gets($sock, 'a');
cmd_is($sock, "delete a\r\n", "DELETED\r\n");
cmd_is($sock, "cas a 0 0 1 $ca\r\nz\r\n", "NOT_FOUND\r\n", 'cas after delete');
cmd_is($sock, "set a 0 0 1\r\na\r\n", "STORED\r\n");
cmd_is($sock, "cas a 0 0 1 $ca\r\nz\r\n", "EXISTS\r\n", 'cas with the unique of a deleted item');

# noreply: nothing comes back, the effect is there.
my (undef, $cb) = mem_gets($sock, 'b');
cmd_is($sock, "cas b 0 0 2 $cb noreply\r\nb2\r\nget b\r\n", "VALUE b 0 2\r\nb2\r\nEND\r\n",
       'cas noreply stores silently');
cmd_is($sock, "cas b 0 0 2 $cb noreply\r\nb3\r\nget b\r\n", "VALUE b 0 2\r\nb2\r\nEND\r\n",
       'failed cas noreply is silent');

# Two clients racing: only the first cas with a unique wins.
my $s2 = $srv->new_sock;
my (undef, $race) = mem_gets($sock, 'b');
cmd_is($s2, "cas b 0 0 2 $race\r\nc2\r\n", "STORED\r\n", 'first client wins the race');
cmd_is($sock, "cas b 0 0 2 $race\r\nc1\r\n", "EXISTS\r\n", 'second client loses it');
mem_get_is($sock, 'b', 'c2');

# Malformed cas lines.
cmd_is($sock, "cas b 0 0 1\r\n", "ERROR\r\n", 'cas without a unique');
cmd_is($sock, "cas b 0 0 1 abc\r\n", "CLIENT_ERROR bad command line format\r\n", 'non-numeric unique');
cmd_is($sock, "cas b 0 0 1 -1\r\n", "CLIENT_ERROR bad command line format\r\n", 'negative unique');
cmd_is($sock, "get b\r\n", "VALUE b 0 2\r\nc2\r\nEND\r\n", 'connection still in sync');

# gets of several keys, some missing.
cmd_like($sock, "gets a nokey b\r\n", qr/^VALUE a 0 1 \d+\r\n\z/, 'multi-key gets');
expect_is($sock, "a\r\n");
like(read_line($sock), qr/^VALUE b 0 2 \d+\r\n\z/);
expect_is($sock, "c2\r\nEND\r\n");

# -C: uniques are 0 and cas can never succeed.
my $nocas = start_server('-C');
my $nc = $nocas->new_sock;
cmd_is($nc, "set k 0 0 1\r\nx\r\n", "STORED\r\n");
cmd_is($nc, "gets k\r\n", "VALUE k 0 1 0\r\nx\r\nEND\r\n", 'gets answers unique 0 with -C');
cmd_is($nc, "cas k 0 0 1 0\r\ny\r\n", "EXISTS\r\n", 'cas with unique 0 and -C');
cmd_is($nc, "cas nokey 0 0 1 0\r\ny\r\n", "NOT_FOUND\r\n", 'cas on a missing key with -C');
mem_get_is($nc, 'k', 'x');
is(stats($nc, 'settings')->{cas_enabled}, 'no', 'stats settings: cas_enabled no');

done_testing;
