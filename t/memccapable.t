#!/usr/bin/perl
# Runs memccapable (Debian's libmemcached-tools) against the server: every
# one of its ascii and binary protocol cases must pass.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX ();
use Test::More;
use MemcachedTest;

my ($tool) = grep { -x } map { "$_/memccapable" } split /:/, $ENV{PATH};
plan skip_all => 'memccapable not installed (apt-get install libmemcached-tools)' unless $tool;

my $srv = start_server();
my $out = '';
my $pid = open(my $fh, '-|') // die "fork: $!";
if ($pid == 0) {
    open STDERR, '>&', \*STDOUT;
    { no warnings 'exec'; exec $tool, '-h', '127.0.0.1', '-p', $srv->port, '-t', '5'; }
    print "exec $tool: $!\n";
    POSIX::_exit(127);
}
# memccapable has its own per-operation timeout; this bounds the whole run.
my $killer = fork // die "fork: $!";
if ($killer == 0) {
    sleep 120;
    kill 'KILL', $pid;
    POSIX::_exit(0);
}
$out .= $_ while <$fh>;
close $fh;
my $status = $?;
kill 'KILL', $killer;
waitpid($killer, 0);

my @cases = $out =~ /^((?:ascii|binary) \S+(?: \S+)?)\s+\[(\w+)\]/mg;
my %result = @cases;
for my $proto (qw(ascii binary)) {
    cmp_ok(scalar(grep { /^$proto / } keys %result), '>=', 20, "memccapable ran its $proto cases")
        or diag($out);
}
for my $case (sort keys %result) {
    is($result{$case}, 'pass', $case);
}
is($status, 0, 'memccapable exit status 0') or diag($out);
like($out, qr/^All tests passed$/m, 'memccapable: All tests passed');

done_testing;
