#!/usr/bin/perl
# scripts/memcachedrep-tool: memcached-tool's display, stats, settings, dump
# and keys, the replication status with its exit codes, health, --json,
# UNIX sockets, timeouts and usage errors; and keepalived's check script.
# The memcached-tool parts also run against an upstream memcached.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use JSON::PP;
use Test::More;

use MemcachedTest;
use ReplTest;
use E2E qw(run_cmd tool_path repo_root);

my $TOOL = tool_path();
my $CHECK = repo_root() . '/scripts/keepalived/memcachedrep-check';

# (exit status, stdout and stderr) of the tool run with @_.
sub tool { return run_cmd($^X, $TOOL, @_) }

# (exit status, stdout alone).
sub tool_stdout {
    my @cmd = ($^X, $TOOL, @_);
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec { $cmd[0] } @cmd or exit 127;
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

sub json_of {
    my ($out) = @_;
    return eval { decode_json($out) } || {};
}

# ---- memcached-tool's modes ----

my ($srv, $peer) = is_memcachedrep() ? start_pair() : (start_server(''));
my $addr = '127.0.0.1:' . $srv->port;
my $sock = $srv->new_sock;
my %items = (small1 => ['hello', 0, 0], small2 => ['world', 7, 0],
             big => ['x' x 5000, 3, 0], ttl => ['soon', 1, 3600]);
mem_set($sock, $_, $items{$_}[0], flags => $items{$_}[1], exptime => $items{$_}[2])
    for sort keys %items;
mem_set($sock, 'binary', "\xff\x00\xfe", flags => 9);

{
    my ($rc, $out) = tool($addr);
    is($rc, 0, 'display (the default mode) exits 0');
    my @lines = split /\n/, $out;
    is($lines[0], '  #  Item_Size  Max_age   Pages   Count   Full?  Evicted Evict_Time OOM',
       'display: memcached-tool\'s header');
    my $count = 0;
    $count += (split ' ', $_)[4] for @lines[1 .. $#lines];
    is($count, 5, 'display: the Count column adds up to the items stored');
    like($lines[1], qr/^\s+\d+\s+\d+(?:\.\d)?[BKM]\s+\d+s\s+1\s+\d+\s+(?:yes|no)\s+0\s+0\s+0$/,
         'display: a row has the class, size, age, pages, count, full, evictions, OOM');
    my $j = json_of((tool_stdout('--json', $addr, 'display'))[1]);
    is(scalar(@{$j->{slabs} // []}), @lines - 1, '--json display: one object per class');
    ok($j->{slabs}[0]{chunk_size} > 0, '--json display: numbers are numbers');
}

{
    my ($rc, $out) = tool($addr, 'stats');
    is($rc, 0, 'stats exits 0');
    like($out, qr/^#\Q$addr\E\n\s+Field\s+Value\n/, 'stats: headed by the server');
    like($out, qr/^\s+curr_items\s+5$/m, 'stats: two columns, curr_items 5');
    my $j = json_of((tool_stdout('--json', $addr, 'stats'))[1]);
    is($j->{stats}{curr_items}, 5, '--json stats: curr_items is 5');
    ok(!ref $j->{stats}{version} && $j->{stats}{version} =~ /^\d+\.\d+\.\d+/,
       '--json stats: the version stays a string');
    like((tool($addr, 'stats', 'items'))[1], qr/^\s+items:\d+:number\s+\d+$/m, 'stats items');
    my $settings = (tool($addr, 'settings'))[1];
    like($settings, qr/^\s+maxbytes\s+\d+$/m, 'settings: stats settings');
    like($settings, qr/^\s+repl_tombstone_ttl\s+3600$/m, 'settings: the replication keys')
        if is_memcachedrep();
}

# The dump modes list keys with the LRU crawler; memcached's may miss an
# item that moves between LRUs meanwhile, so take the first complete one.
sub complete_dump {
    my (@args) = @_;
    my $out;
    wait_until(sub {
        $out = (tool_stdout(@args))[1];
        return !grep { index($out, $_) < 0 } 'binary', keys %items;
    }, 5 * timeout_scale(), 0.2);
    return $out;
}

{
    is((tool_stdout($addr, 'dump'))[0], 0, 'dump exits 0');
    my $out = complete_dump($addr, 'dump');
    my %dumped;
    while ($out =~ /\Gadd (\S+) (\d+) (\d+) (\d+)\r\n/gc) {
        my ($k, $f, $e, $len) = ($1, $2, $3, $4);
        $dumped{$k} = [substr($out, pos($out), $len), $f, $e];
        pos($out) += $len + 2;
    }
    is(pos($out) // 0, length $out, 'dump: nothing but add commands and values');
    is_deeply([sort keys %dumped], [sort 'binary', keys %items], 'dump: every item');
    is($dumped{big}[0], $items{big}[0], 'dump: the values');
    is($dumped{binary}[0], "\xff\x00\xfe", 'dump: binary values as they are');
    is($dumped{small2}[1], 7, 'dump: the flags');
    is($dumped{small1}[2], 0, 'dump: exptime 0 for an item that does not expire');
    cmp_ok(abs($dumped{ttl}[2] - time - 3600), '<=', 5, 'dump: an absolute exptime otherwise');

    # What dump prints loads into another server as it is.
    my $other = start_server('');
    my $osock = $other->new_sock;
    print $osock $out;
    read_line($osock) for 1 .. 5;
    mem_get_is($osock, $_, $items{$_}[0], flags => $items{$_}[1], name => "dump loads back: $_")
        for sort keys %items;
    $other->stop;

    my ($rc2, $limited) = tool_stdout($addr, 'dump', 2);
    is(() = $limited =~ /^add /mg, 2, 'dump 2: two items');
    my $j = json_of(complete_dump('--json', $addr, 'dump'));
    my %by_key = map { ($_->{key} => $_) } @{$j->{items} // []};
    is($by_key{small1}{value}, 'hello', '--json dump: text values as text');
    is($by_key{binary}{value_base64}, '/wD+', '--json dump: other values in base64');
    my @keys = split /\n/, complete_dump($addr, 'keys');
    is(scalar(@keys), 5, 'keys: one line per item');
    like($keys[0], qr/^key=\S+ exp=-?\d+ la=\d+ cas=\d+ fetch=(?:yes|no) cls=\d+ size=\d+$/,
         'keys: the metadata of each key');
}

# ---- Replication status ----

SKIP: {
    skip 'replication is memcachedrep\'s', 14 unless is_memcachedrep();
    my $paddr = '127.0.0.1:' . $peer->port;
    my ($rc, $out) = tool($addr, 'repl');
    is($rc, 0, 'repl: exit 0 while the link streams');
    like($out, qr/^REPL OK - \Q$addr\E: streaming with \S+\n/, 'repl: a one-line verdict');
    like($out, qr/^Peer\s+State\s+Role\s+Lag_ms\s+RTT_ms\s+Pending\s+Pend_KB\s+Syncs\s+Reconn\s+/m,
         'repl: the table header');
    like($out, qr/^\S+\s+streaming\s+(?:dialing|listening)\s+[\d.]+\s+[\d.]+\s+\d+\s+\d+\s+\d+/m,
         'repl: the peer\'s row');
    my $j = json_of((tool_stdout('--json', $addr, 'repl'))[1]);
    is($j->{status}, 'ok', '--json repl: status ok');
    is($j->{exit}, 0, '--json repl: exit 0');
    is($j->{peers}[0]{state}, 'streaming', '--json repl: the peer streams');
    ok(defined $j->{peers}[0]{lag_us} && !ref $j->{peers}[0]{lag_us}, '--json repl: lag_us');
    cmp_ok($j->{peers}[0]{bulk_syncs}, '>=', 1, '--json repl: bulk_syncs');

    $peer->signal('KILL');
    $peer->wait_exit(10);
    ok(wait_until(sub { (tool($addr, 'repl'))[0] == 2 }, $ReplTest::DEADLINE, 0.1),
       'repl: exit 2 once the peer is gone');
    like((tool($addr, 'repl'))[1], qr/^REPL CRITICAL - .*link to \S+ is (?:down|connecting)/,
         'repl: says the link is down');
    is((tool($addr, 'health'))[0], 0, 'health: a node whose peer died is still fit');
    is((tool($paddr, 'repl'))[0], 2, 'repl: exit 2 for a node that does not answer');
    my $plain = start_server('');
    is((tool('127.0.0.1:' . $plain->port, 'repl'))[0], 3,
       'repl: exit 3 for a server that does not replicate');
    $plain->stop;
}

{
    my $j = json_of((tool_stdout('--json', $addr, 'health'))[1]);
    ok($j->{healthy}, '--json health: healthy');
    is((run_cmd($CHECK, $addr))[0], 0, 'memcachedrep-check: 0 for a live node');
    my $dead = free_port();
    is((tool("127.0.0.1:$dead", 'health'))[0], 2, 'health: exit 2 when nothing answers');
    isnt((run_cmd($CHECK, "127.0.0.1:$dead"))[0], 0, 'memcachedrep-check: fails then');
    my ($rc, $out) = tool_stdout('--json', "127.0.0.1:$dead", 'stats');
    is($rc, 2, 'stats: exit 2 when the server cannot be reached');
    like(json_of($out)->{error}, qr/cannot connect/, '--json: the error is in the object');
}

# ---- Transports, timeouts, usage ----

{
    my $unix = start_server(unix_socket => 1);
    my ($rc, $out) = tool($unix->socket_path, 'stats');
    is($rc, 0, 'a UNIX socket path works as the server');
    like($out, qr/^\s+pid\s+\d+$/m, '...and answers stats');
    $unix->stop;

    my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5)
        or die "listen: $!";
    my $t0 = time;
    ($rc, $out) = tool('--timeout', '1', '127.0.0.1:' . $mute->sockport, 'stats');
    is($rc, 2, '--timeout: a server that never answers fails the request');
    like($out, qr/no answer within 1 s/, '...saying so');
    cmp_ok(time - $t0, '<=', 4, '...after about the timeout');
}

for my $bad ([[], 'no server'], [[$addr, 'nosuchmode'], 'unknown mode'],
             [[$addr, 'dump', 'abc'], 'dump with a bad limit'],
             [['--timeout', '0', $addr], 'a zero timeout'], [['--nosuchoption'], 'unknown option'],
             [[$addr, 'repl', 'extra'], 'extra arguments']) {
    my ($args, $what) = @$bad;
    my ($rc, $out) = tool(@$args);
    is($rc, 3, "usage error ($what): exit 3");
    like($out, qr/Usage:/, "usage error ($what): the usage is printed");
}
{
    my ($rc, $out) = tool('--version');
    is("$rc $out", "0 memcachedrep-tool 0.1.0\n", '--version');
    ($rc, $out) = tool('--help');
    like($out, qr/MODES/, '--help prints the manual');
}

done_testing;
