#!/usr/bin/perl
# The command line: -h, -V and -i print and exit 0; a bad option or value
# prints one line on stderr and exits 1 (memcached exits 1 or 64, and
# accepts much of what is rejected here, e.g. "-m abc" or "-p -1"); good
# values land in "stats settings".
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX qw(WIFEXITED WEXITSTATUS);
use Test::More;
use MemcachedTest;

my $ours = is_memcachedrep();
my $dir  = tempdir('mcopts.XXXXXX', TMPDIR => 1, CLEANUP => 1);

# Run the binary with exactly @argv for at most 3 seconds.  Returns (exit
# code, or 'running' if it was still up and had to be killed, stdout,
# stderr).
sub run_argv {
    my (@argv) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', "$dir/out";
        open STDERR, '>', "$dir/err";
        { no warnings 'exec'; exec memcached_bin(), @argv; }
        POSIX::_exit(127);
    }
    my $status;
    wait_until(sub {
        return 0 unless waitpid($pid, POSIX::WNOHANG()) == $pid;
        $status = $?;
        return 1;
    }, 3);
    unless (defined $status) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    my %text;
    for my $f (qw(out err)) {
        open my $fh, '<', "$dir/$f" or die "$dir/$f: $!";
        local $/;
        $text{$f} = <$fh> // '';
    }
    my $code = !defined $status ? 'running'
             : WIFEXITED($status) ? WEXITSTATUS($status) : "signal " . ($status & 127);
    return ($code, $text{out}, $text{err});
}

# run_argv with -p 0 -U 0 first (a run that does start binds nothing) and
# -u root when root.
sub run_bin {
    my (@args) = @_;
    my @base = ('-p', 0, '-U', 0);
    push @base, '-u', 'root' if $> == 0;
    return run_argv(@base, @args);
}

# ---- -h, -V, -i ----

{
    my ($code, $out, $err) = run_bin('-h');
    is($code, 0, '-h exits 0');
    my @lines = split /\n/, $out;
    if ($ours) {
        is($lines[0], 'memcached 1.6.45', '-h: first line is the protocol version');
        like($lines[1], qr/^memcachedrep \d+\.\d+\.\d+$/, '-h: second line is our version');
        for my $opt (qw(p U s a A l d r u m M c k v h i V P f n L D t R C b B I F W Y e N o
                        x X q)) {
            like($out, qr/^-\Q$opt\E[, ]/m, "-h describes -$opt");
        }
        like($out, qr/^\s+--disable-dumping/m, '-h describes --disable-dumping');
        for my $key (qw(maxconns_fast hashpower tail_repair_time hash_algorithm no_lru_crawler
                        lru_crawler_sleep lru_crawler_tocrawl read_buf_mem_limit
                        no_lru_maintainer hot_lru_pct warm_lru_pct hot_max_factor
                        warm_max_factor temporary_ttl idle_timeout slab_chunk_max
                        watcher_logbuf_size worker_logbuf_size track_sizes no_hashexpand
                        modern no_modern sock_cookie_id ext_path slab_automove_freeratio)) {
            like($out, qr/^\s+\Q$key\E\b/m, "-h describes -o $key");
        }
        ok(!(grep { length > 79 } @lines), '-h lines fit in 79 columns');
    } else {
        like($lines[0], qr/^memcached \d+\.\d+\.\d+$/, '-h: first line is the version');
    }
    is($err, '', '-h prints nothing on stderr');
}

{
    my ($code, $out, $err) = run_bin('-V');
    is($code, 0, '-V exits 0');
    is($out, 'memcached ' . expected_version() . "\n", '-V prints the version');
    my ($code2, $out2) = run_bin('--version');
    is($out2, $out, '--version is -V');
}

{
    my ($code, $out) = run_bin('-i');
    is($code, 0, '-i exits 0');
    if ($ours) {
        like($out, qr/Copyright \(c\) 2026 the memcachedrep authors/, '-i: our copyright');
        like($out, qr/Redistribution and use in source and binary forms/, '-i: BSD licence');
        like($out, qr/libevent/, '-i: libevent is credited');
    }
}

# ---- Bad options: one line on stderr, exit 1 ----

# [args, also rejected by memcached 1.6.18?]
my @bad = (
    [['-m', 'abc'], 1], [['-m', '0'], 1], [['-m', '-5'], 0], [['-m', '1x'], 0],
    [['-p', '70000'], 1], [['-p', 'abc'], 0], [['-p', '-1'], 0], [['-U', '65536'], 0],
    [['-I', '2k'], 1], [['-I', '512'], 1], [['-I', '1025m'], 1], [['-I', '600k'], 1],
    [['-I', 'abc'], 1], [['-I', '2m', '-m', '2'], 1],
    [['-t', '0'], 1], [['-t', 'abc'], 1],
    [['-f', '0.5'], 1], [['-f', '1'], 1], [['-f', 'abc'], 1],
    [['-c', '0'], 1], [['-c', '-1'], 1], [['-c', 'abc'], 1],
    [['-B', 'foo'], 1], [['-n', '0'], 1], [['-n', 'abc'], 1],
    [['-R', '0'], 1], [['-R', 'abc'], 1], [['-b', 'abc'], 0],
    [['-a', '999'], 0], [['-D', ''], 1], [['-D', 'ab'], 0],
    [['-o', 'nosuchkey'], 1], [['-o', 'hashpower'], 1], [['-o', 'hashpower=5'], 1],
    [['-o', 'hashpower=99'], 1], [['-o', 'tail_repair_time=5'], 1],
    [['-o', 'hash_algorithm=foo'], 1], [['-o', 'lru_crawler_sleep=1000001'], 1],
    [['-o', 'hot_lru_pct=80'], 1], [['-o', 'hot_lru_pct=50,warm_lru_pct=50'], 1],
    [['-o', 'hot_max_factor=0'], 1], [['-o', 'slab_automove=3'], 1],
    [['-o', 'slab_automove_ratio=2'], 1], [['-o', 'slab_automove_window=2'], 1],
    [['-o', 'read_buf_mem_limit=abc'], 1], [['-o', 'ext_path'], 1],
    [['-o', 'ext_threads=abc'], 1], [['-o', 'lru_crawler_tocrawl=-1'], 1],
    [['-o', 'idle_timeout=abc'], 0], [['-o', 'temporary_ttl=-1'], 0],
    [['-o', 'maxconns_fast,,track_sizes'], 1],
    [['-N', '0'], 1], [['-z'], 1], [['--no-such-option'], 1], [['--port'], 1],
    [['--help=yes'], 1], [['stray'], 0],
);
if ($ours) {
    push @bad, [['-x', ''], 0], [['-x', 'host:0'], 0], [['-x', 'host:abc'], 0],
               [['-X', '0'], 0], [['-X', '70000'], 0], [['-q', '0'], 0], [['-q', 'abc'], 0],
               [['-Y', '/dev/null'], 0], [['-o', 'repl_tombstone_ttl=0'], 0],
               [['-o', 'repl_tombstone_ttl=abc'], 0], [['-o', 'repl_drain_timeout=-1'], 0],
               [['-o', 'repl_drain_timeout'], 0];
}

for my $case (@bad) {
    my ($args, $upstream_rejects) = @$case;
    next unless $ours || $upstream_rejects;
    my $label = join ' ', map { $_ eq '' ? "''" : $_ } @$args;
    my ($code, $out, $err) = run_bin(@$args);
    if ($ours) {
        is($code, 1, "$label: exits 1");
        like($err, qr/\Amemcached: [^\n]+\n\z/, "$label: one line on stderr")
            or diag("stderr: $err");
    } else {
        ok($code ne 'running' && $code ne '0', "$label: refused (exit $code)");
    }
}

# ---- Good values reach "stats settings" ----

my @good = (
    ['-m 128', {maxbytes => 128 * 1024 * 1024}],
    ['-m 1024k -I 512k', {maxbytes => 1024 * 1024, item_size_max => 512 * 1024}, 'ours'],
    ['--memory-limit=32', {maxbytes => 32 * 1024 * 1024}],
    ['-I 2m', {item_size_max => 2 * 1024 * 1024, slab_chunk_max => 512 * 1024}],
    ['-I 128k -o slab_chunk_max=64', {item_size_max => 128 * 1024, slab_chunk_max => 65536},
     'ours'],
    ['-c 100 -t 2 -R 7 -b 50', {maxconns => 100, num_threads => 2, reqs_per_event => 7,
                                 tcp_backlog => 50}],
    ['-f 1.5 -n 64', {growth_factor => '1.50', chunk_size => 64}],
    ['-M -C -F -A', {evictions => 'off', cas_enabled => 'no', flush_enabled => 'no',
                     shutdown_command => 'yes'}],
    ['--disable-dumping', {dump_enabled => 'no'}],
    ['-D #', {stat_key_prefix => '#', detail_enabled => 'yes'}],
    ['-B ascii', {binding_protocol => 'ascii'}],
    ['-vv', {verbosity => 2}],
    ['-o no_modern', {hash_algorithm => 'jenkins', lru_crawler => 'no', slab_reassign => 'no',
                      maxconns_fast => 'no', lru_maintainer_thread => 'no',
                      slab_chunk_max => 1024 * 1024}],
    ['-o hash_algorithm=xxh3', {hash_algorithm => 'murmur3'}, 'ours'],
    ['-o temporary_ttl=30,track_sizes,idle_timeout=9,read_buf_mem_limit=5',
     {temp_lru => 'yes', temporary_ttl => 30, track_sizes => 'yes', idle_timeout => 9,
      read_buf_mem_limit => 5 * 1024 * 1024}],
    ['-o hot_lru_pct=30,warm_lru_pct=50,hot_max_factor=0.5,slab_automove=2',
     {hot_lru_pct => 30, warm_lru_pct => 50, hot_max_factor => '0.50', slab_automove => 2}],
    ['-o modern,ext_path=/nonexistent:1G,sock_cookie_id=3 -W -N 2', {}, 'ours'],
    ['-X 11299 -q 500', {repl_port => 11299, repl_queue_max => 500, repl_tombstone_ttl => 3600,
                          repl_drain_timeout => 10}, 'ours'],
    ['-o repl_tombstone_ttl=60,repl_drain_timeout=0',
     {repl_tombstone_ttl => 60, repl_drain_timeout => 0}, 'ours'],
);

for my $case (@good) {
    my ($args, $want, $only_ours) = @$case;
    next if $only_ours && !$ours;
    my $srv = start_server($args);
    my $st  = stats($srv->new_sock, 'settings');
    for my $k (sort keys %$want) {
        is($st->{$k}, $want->{$k}, "$args: $k is $want->{$k}");
    }
    ok(scalar(keys %$st) > 40, "$args: the server runs and reports its settings");
    $srv->stop;
}

done_testing;
