#!/usr/bin/perl
# Every thread of memcachedrep carries a name (what `top -H`, `ps -L` and
# perf show): one "mc-worker" per -t, "mc-hashexp", "mc-crawler",
# "mc-slabmaint", and "mc-repl" with -x; the main thread keeps the program's
# name.  Read from /proc, so Linux only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcachedTest;

plan skip_all => 'thread names are memcachedrep\'s' unless is_memcachedrep();
plan skip_all => 'needs /proc' unless -d "/proc/$$/task";

# name => how many threads carry it, for the server's process.
sub thread_names {
    my ($srv) = @_;
    my %n;
    for my $task (glob '/proc/' . $srv->pid . '/task/*') {
        open my $fh, '<', "$task/comm" or next;
        chomp(my $name = <$fh> // '');
        $n{$name}++;
    }
    return \%n;
}

# The main thread keeps the name of the executable (/proc/<pid>/comm).
sub main_name {
    my ($srv) = @_;
    open my $fh, '<', '/proc/' . $srv->pid . '/comm' or return '';
    chomp(my $name = <$fh> // '');
    return $name;
}

my $srv = start_server(args => '-t 3');
is_deeply(thread_names($srv),
    { main_name($srv) => 1, 'mc-worker' => 3, 'mc-hashexp' => 1, 'mc-crawler' => 1, 'mc-slabmaint' => 1 },
    'three named workers and the named background threads');
$srv->stop;

my $node = start_server(args => '-t 1 -x 127.0.0.1 -X ' . free_port());
is(thread_names($node)->{'mc-repl'}, 1, 'with -x: one replication thread named mc-repl');
is(thread_names($node)->{'mc-worker'}, 1, '-t 1: one worker');
$node->stop;

done_testing();
