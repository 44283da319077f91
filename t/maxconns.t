#!/usr/bin/perl
# -c: past the connection limit a new client gets "ERROR Too many open
# connections" and is closed, while the connections already open keep
# working; below the limit many concurrent connections all work.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

my $VERSION = "VERSION " . expected_version() . "\r\n";
my $TOO_MANY = "ERROR Too many open connections\r\n";

# memcached counts file descriptors against -c (listeners and internal
# pipes included), so the first refusal comes somewhat before -c clients.
my $limit = 64;
my $srv = start_server("-c $limit");
my $admin = $srv->new_sock;
cmd_is($admin, "set k 0 0 1\r\nv\r\n", "STORED\r\n");

my (@open, $refused);
for my $i (1 .. $limit + 5) {
    my $s = $srv->new_sock;
    send_bytes($s, "version\r\n");
    my $line = read_line($s);
    if (defined $line && $line eq $VERSION) {
        push @open, $s;
        next;
    }
    $refused = [$i, $line, $s];
    last;
}
ok($refused, 'a connection past the limit is refused') or do { done_testing(); exit };
my $accepted = @open + 1;    # with $admin
cmp_ok($accepted, '>=', $limit - 30, "$accepted connections were accepted first");
cmp_ok($accepted, '<=', $limit, 'no more than -c');
is($refused->[1], $TOO_MANY, 'the refused connection is told why');
my (undef, $eof) = read_available($refused->[2], 3 * timeout_scale());
ok($eof, 'and then closed');

# The connections already open are unaffected.
my $bad = grep { !cmd_is($_, "get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n", 'open connection still served') } @open[0, -1];
is($bad, 0, 'first and last open connections work');
my $st = stats($admin);
cmp_ok($st->{rejected_connections}, '>=', 1, 'rejected_connections counts the refusal');
is($st->{max_connections}, $limit, 'max_connections is -c');

# Closing one makes room for a new one.
close(pop @open);
ok(wait_until(sub {
    my $s = $srv->new_sock;
    send_bytes($s, "version\r\n");
    my $l = read_line($s) // '';
    push @open, $s if $l eq $VERSION;
    return $l eq $VERSION;
}, 5 * timeout_scale(), 0.1), 'after one closes, a new connection is accepted');

# Everything closes: all connections are released.
close $_ for @open;
ok(wait_until(sub { stats($admin)->{curr_connections} <= 2 }, 5 * timeout_scale()),
   'closed connections are released');

# Default limit: 200 concurrent connections all work, interleaved.
my $big = start_server();
my @c = map { $big->new_sock } 1 .. 200;
send_bytes($c[$_], "set key$_ 0 0 " . length($_) . "\r\n$_\r\n") for 0 .. $#c;
my $stored = grep { (read_line($c[$_]) // '') eq "STORED\r\n" } 0 .. $#c;
is($stored, 200, '200 concurrent connections each store a value');
send_bytes($c[$_], "get key" . (199 - $_) . "\r\n") for 0 .. $#c;
my $right = 0;
for my $i (0 .. $#c) {
    my $n = 199 - $i;
    my $want = "VALUE key$n 0 " . length($n) . "\r\n$n\r\nEND\r\n";
    my $got = read_bytes($c[$i], length $want);
    $right++ if defined $got && $got eq $want;
}
is($right, 200, "each reads another connection's value");
cmp_ok(stats($c[0])->{curr_connections}, '>=', 200, 'curr_connections counts them');
is(stats($c[0])->{rejected_connections}, 0, 'none refused');

done_testing;
