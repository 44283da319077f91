#!/usr/bin/perl
# stats and its groups: the general names of the 1.6 protocol, counters
# that move with each command, settings, items, slabs, sizes, conns,
# detail (per-prefix), reset and cachedump.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

# ---- general stats ----
my @general = qw(
    pid uptime time version pointer_size rusage_user rusage_system
    curr_items total_items bytes max_connections curr_connections total_connections
    rejected_connections connection_structures response_obj_oom response_obj_count
    response_obj_bytes read_buf_count read_buf_bytes read_buf_bytes_free read_buf_oom
    reserved_fds cmd_get cmd_set cmd_flush cmd_touch get_hits get_misses get_expired
    get_flushed delete_misses delete_hits incr_misses incr_hits decr_misses decr_hits
    cas_misses cas_hits cas_badval touch_hits touch_misses store_too_large store_no_memory
    auth_cmds auth_errors evictions reclaimed bytes_read bytes_written limit_maxbytes
    accepting_conns listen_disabled_num time_in_listen_disabled_us threads conn_yields
    hash_power_level hash_bytes hash_is_expanding expired_unfetched evicted_unfetched
    evicted_active slab_reassign_running slabs_moved crawler_reclaimed crawler_items_checked
    lrutail_reflocked moves_to_cold moves_to_warm moves_within_lru direct_reclaims
    lru_crawler_starts lru_maintainer_juggles slab_global_page_pool slab_reassign_rescues
    slab_reassign_chunk_rescues slab_reassign_inline_reclaim slab_reassign_busy_items
    slab_reassign_busy_deletes log_worker_dropped log_worker_written log_watcher_skipped
    log_watcher_sent log_watchers unexpected_napi_ids round_robin_fallback
);
my $st = stats($sock);
my @missing = grep { !exists $st->{$_} } @general;
is("@missing", '', 'every general stat of the protocol document is present');
is($st->{pid}, $srv->pid, 'pid is the server process');
is($st->{version}, expected_version(), 'version');
cmp_ok(abs($st->{time} - time), '<=', 2, 'time is the current unix time');
cmp_ok($st->{uptime}, '<', 30, 'uptime is small');
is($st->{pointer_size}, 64, 'pointer_size');
like($st->{rusage_user}, qr/^\d+\.\d{6}$/, 'rusage_user is seconds.microseconds');
like($st->{rusage_system}, qr/^\d+\.\d{6}$/, 'rusage_system is seconds.microseconds');
is($st->{limit_maxbytes}, 64 * 1024 * 1024, 'limit_maxbytes defaults to 64 MB');
is($st->{max_connections}, 1024, 'max_connections defaults to 1024');
is($st->{threads}, 4, 'threads defaults to 4');
is($st->{accepting_conns}, 1, 'accepting_conns');
is($st->{curr_items}, 0, 'no items at start');
is($st->{total_items}, 0, 'total_items 0 at start');
is($st->{bytes}, 0, 'bytes 0 at start');
# The raw answer, to check that no name appears twice.
send_bytes($sock, "stats\r\n");
my (%seen, @dupes);
while (defined(my $line = read_line($sock))) {
    last if $line eq "END\r\n";
    my ($name) = $line =~ /^STAT (\S+)/;
    $name //= $line;
    push @dupes, $name if $seen{$name}++;
}
is("@dupes", '', 'no stat name is repeated');

# ---- counters ----
# Each step: commands, then the counters that must have moved by how much.
sub moved {
    my ($send, $expect, $deltas, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $before = stats($sock);
    cmd_is($sock, $send, $expect, "$name: answer");
    my $after = stats($sock);
    my @wrong;
    for my $k (sort keys %$deltas) {
        my $d = $after->{$k} - $before->{$k};
        push @wrong, "$k moved by $d, not $deltas->{$k}" if $d != $deltas->{$k};
    }
    is(join('; ', @wrong), '', "$name: counters");
}

moved("set foo 0 0 3\r\nbar\r\n", "STORED\r\n",
      { cmd_set => 1, curr_items => 1, total_items => 1 }, 'set');
moved("get foo\r\n", "VALUE foo 0 3\r\nbar\r\nEND\r\n",
      { cmd_get => 1, get_hits => 1, get_misses => 0 }, 'get hit');
moved("get nokey\r\n", "END\r\n", { cmd_get => 1, get_hits => 0, get_misses => 1 }, 'get miss');
moved("get foo nokey foo x y\r\n", "VALUE foo 0 3\r\nbar\r\nVALUE foo 0 3\r\nbar\r\nEND\r\n",
      { cmd_get => 5, get_hits => 2, get_misses => 3 }, 'multi-get counts every key');
moved("add foo 0 0 1\r\nx\r\n", "NOT_STORED\r\n", { cmd_set => 1, curr_items => 0 }, 'failed add');
moved("set n 0 0 1\r\n5\r\n", "STORED\r\n", { curr_items => 1, total_items => 1 }, 'second item');
moved("incr n 1\r\n", "6\r\n", { incr_hits => 1, incr_misses => 0 }, 'incr hit');
moved("incr nokey 1\r\n", "NOT_FOUND\r\n", { incr_hits => 0, incr_misses => 1 }, 'incr miss');
moved("decr n 1\r\n", "5\r\n", { decr_hits => 1, decr_misses => 0 }, 'decr hit');
moved("decr nokey 1\r\n", "NOT_FOUND\r\n", { decr_hits => 0, decr_misses => 1 }, 'decr miss');
moved("touch foo 100\r\n", "TOUCHED\r\n", { cmd_touch => 1, touch_hits => 1 }, 'touch hit');
moved("touch nokey 100\r\n", "NOT_FOUND\r\n", { cmd_touch => 1, touch_misses => 1 }, 'touch miss');
moved("gat 100 foo nokey\r\n", "VALUE foo 0 3\r\nbar\r\nEND\r\n",
      { cmd_touch => 2, touch_hits => 1, touch_misses => 1 }, 'gat counts as touches');
moved("cas nokey 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n", { cas_misses => 1 }, 'cas miss');
my (undef, $cas) = mem_gets($sock, 'foo');
moved("cas foo 0 0 1 " . ($cas + 1000) . "\r\nx\r\n", "EXISTS\r\n", { cas_badval => 1 }, 'cas bad value');
moved("cas foo 0 0 1 $cas\r\nx\r\n", "STORED\r\n", { cas_hits => 1, cmd_set => 1 }, 'cas hit');
moved("delete foo\r\n", "DELETED\r\n", { delete_hits => 1, curr_items => -1 }, 'delete hit');
moved("delete foo\r\n", "NOT_FOUND\r\n", { delete_misses => 1 }, 'delete miss');
moved("set big 0 0 2000000\r\n" . ('x' x 2000000) . "\r\n", "SERVER_ERROR object too large for cache\r\n",
      { store_too_large => 1, curr_items => 0 }, 'too large');
moved("flush_all\r\n", "OK\r\n", { cmd_flush => 1 }, 'flush_all');
moved("get n\r\n", "END\r\n", { get_flushed => 1, get_misses => 1 }, 'get of a flushed item');
moved("set e 0 1 1\r\ne\r\n", "STORED\r\n", {}, 'short-lived item');
ok(wait_until(sub { !%{ mem_get_multi($sock, ['e']) } }, 5), 'it expires');
cmp_ok(stats($sock)->{get_expired}, '>=', 1, 'get_expired counts the read of an expired item');

$st = stats($sock);
cmp_ok($st->{bytes_read}, '>', 2000000, 'bytes_read counts what clients sent');
cmp_ok($st->{bytes_written}, '>', 100, 'bytes_written counts what was sent back');
moved("set b 0 0 5\r\nhello\r\n", "STORED\r\n", {}, 'one more item');
cmp_ok(stats($sock)->{bytes}, '>=', 5, 'bytes counts stored items');

# Connections.
my $conns = stats($sock)->{curr_connections};
my @extra = map { $srv->new_sock } 1 .. 3;
cmd_is($_, "version\r\n", "VERSION " . expected_version() . "\r\n") for @extra;
$st = stats($sock);
is($st->{curr_connections}, $conns + 3, 'curr_connections counts open connections');
my $total = $st->{total_connections};
close $_ for @extra;
ok(wait_until(sub { stats($sock)->{curr_connections} == $conns }), 'and drops when they close');
my $one = $srv->new_sock;
cmd_is($one, "version\r\n", "VERSION " . expected_version() . "\r\n");
is(stats($sock)->{total_connections}, $total + 1, 'total_connections counts every connection');

# ---- stats reset ----
cmd_is($sock, "stats reset\r\n", "RESET\r\n", 'stats reset');
$st = stats($sock);
is($st->{$_}, 0, "$_ is 0 after reset")
    for qw(cmd_get cmd_set get_hits get_misses delete_hits incr_hits cas_badval touch_hits
           evictions total_items);
is($st->{curr_items}, 1, 'curr_items survives a reset');
cmp_ok($st->{bytes}, '>', 0, 'bytes survives a reset');
mem_get_is($sock, 'b', 'hello', name => 'items survive a reset');

# ---- stats settings ----
my $set = stats($sock, 'settings');
my @settings = qw(
    maxbytes maxconns tcpport udpport inter verbosity oldest evictions domain_socket umask
    shutdown_command growth_factor chunk_size num_threads stat_key_prefix detail_enabled
    reqs_per_event cas_enabled tcp_backlog auth_enabled_sasl item_size_max maxconns_fast
    hashpower_init slab_reassign slab_automove slab_automove_ratio slab_automove_window
    slab_chunk_max hash_algorithm lru_crawler lru_crawler_sleep lru_crawler_tocrawl
    lru_maintainer_thread hot_lru_pct warm_lru_pct hot_max_factor warm_max_factor temp_lru
    temporary_ttl idle_timeout watcher_logbuf_size worker_logbuf_size read_buf_mem_limit
    track_sizes inline_ascii_response memory_file
);
@missing = grep { !exists $set->{$_} } @settings;
is("@missing", '', 'every settings stat of the protocol document is present');
my %defaults = (
    maxbytes => 67108864, maxconns => 1024, tcpport => $srv->port, udpport => 0,
    inter => '127.0.0.1', verbosity => 0, evictions => 'on', domain_socket => 'NULL',
    umask => 700, shutdown_command => 'no', growth_factor => '1.25', chunk_size => 48,
    num_threads => 4, stat_key_prefix => ':', detail_enabled => 'no', reqs_per_event => 20,
    cas_enabled => 'yes', tcp_backlog => 1024, item_size_max => 1048576, maxconns_fast => 'yes',
    hashpower_init => 0, slab_chunk_max => 524288, hash_algorithm => 'murmur3',
    lru_crawler => 'yes', lru_crawler_sleep => 100, lru_crawler_tocrawl => 0,
    lru_maintainer_thread => 'yes', hot_lru_pct => 20, warm_lru_pct => 40,
    hot_max_factor => '0.20', warm_max_factor => '2.00', temp_lru => 'no', temporary_ttl => 61,
    idle_timeout => 0, watcher_logbuf_size => 262144, worker_logbuf_size => 65536,
    read_buf_mem_limit => 0, track_sizes => 'no', slab_reassign => 'yes', slab_automove => 1,
    slab_automove_ratio => '0.80', slab_automove_window => 30,
);
for my $k (sort keys %defaults) {
    is($set->{$k}, $defaults{$k}, "default setting $k");
}

my $custom = start_server('-m 32 -c 500 -t 2 -f 1.5 -n 64 -R 10 -b 256 -A -o idle_timeout=30,hot_lru_pct=30,track_sizes');
my $cs = $custom->new_sock;
$set = stats($cs, 'settings');
my %custom = (maxbytes => 33554432, maxconns => 500, num_threads => 2, growth_factor => '1.50',
              chunk_size => 64, reqs_per_event => 10, tcp_backlog => 256, shutdown_command => 'yes',
              idle_timeout => 30, hot_lru_pct => 30, track_sizes => 'yes');
for my $k (sort keys %custom) {
    is($set->{$k}, $custom{$k}, "setting $k follows the command line");
}
is(stats($cs)->{threads}, 2, 'threads follows -t');
is(stats($cs)->{max_connections}, 500, 'max_connections follows -c');

# ---- stats sizes ----
cmd_is($sock, "stats sizes\r\n", "STAT sizes_status disabled\r\nEND\r\n", 'stats sizes without track_sizes');
cmd_is($cs, "set s1 0 0 10\r\n0123456789\r\nset s2 0 0 100\r\n" . ('y' x 100) . "\r\n", "STORED\r\nSTORED\r\n");
my $sizes = stats($cs, 'sizes');
my @bad = grep { !/^\d+$/ || $sizes->{$_} !~ /^\d+$/ } grep { length } keys %$sizes;
is("@bad", '', 'stats sizes with track_sizes: "STAT <size> <count>" lines');
my $sum = 0;
$sum += $sizes->{$_} for grep { length } keys %$sizes;
is($sum, 2, 'the counts add up to the items stored');
ok(!(grep { $_ % 32 } grep { length } keys %$sizes), 'sizes are multiples of 32');

# ---- stats items / stats slabs ----
cmd_is($sock, "set small 0 0 10\r\n0123456789\r\n", "STORED\r\n");
my $items = stats($sock, 'items');
my ($cls) = map { /^items:(\d+):number$/ ? $1 : () } sort keys %$items;
ok($cls, 'stats items lists a class');
for my $f (qw(number number_hot number_warm number_cold age_hot age_warm age mem_requested
              evicted evicted_nonzero evicted_time outofmemory tailrepairs reclaimed
              expired_unfetched evicted_unfetched evicted_active crawler_reclaimed
              crawler_items_checked lrutail_reflocked moves_to_cold moves_to_warm
              moves_within_lru direct_reclaims hits_to_hot hits_to_warm hits_to_cold hits_to_temp)) {
    ok(exists $items->{"items:$cls:$f"}, "stats items has $f");
}
my $n = 0;
$n += $items->{$_} for grep { /^items:\d+:number$/ } keys %$items;
is($n, stats($sock)->{curr_items}, 'the per-class numbers add up to curr_items');

my $slabs = stats($sock, 'slabs');
for my $f (qw(chunk_size chunks_per_page total_pages total_chunks used_chunks free_chunks
              free_chunks_end get_hits cmd_set delete_hits incr_hits decr_hits cas_hits
              cas_badval touch_hits)) {
    ok(exists $slabs->{"$cls:$f"}, "stats slabs has $f for class $cls");
}
ok(exists $slabs->{active_slabs}, 'stats slabs has active_slabs');
ok(exists $slabs->{total_malloced}, 'stats slabs has total_malloced');
cmp_ok($slabs->{"$cls:used_chunks"}, '>=', 1, 'used_chunks counts the item');
cmp_ok($slabs->{total_malloced}, '<=', 64 * 1024 * 1024, 'total_malloced within -m');
my @sizes = map { $slabs->{"$_:chunk_size"} } sort { $a <=> $b } map { /^(\d+):chunk_size$/ ? $1 : () } keys %$slabs;
ok(!(grep { $sizes[$_] <= $sizes[$_ - 1] } 1 .. $#sizes), 'chunk sizes grow with the class id');

# ---- stats conns ----
my $c = stats($sock, 'conns');
my @addrs = grep { /^\d+:addr$/ } keys %$c;
ok((grep { $c->{$_} =~ /^tcp:127\.0\.0\.1:\d+$/ } @addrs), 'stats conns shows tcp client addresses');
ok((grep { /^\d+:state$/ && $c->{$_} eq 'conn_listening' } keys %$c), 'and the listening socket');
ok((grep { /^\d+:listen_addr$/ && $c->{$_} eq "tcp:127.0.0.1:" . $srv->port } keys %$c),
   'clients carry the listen address');
ok(!(grep { !/^\d+:(addr|listen_addr|state|secs_since_last_cmd)$/ } grep { length } keys %$c),
   'only the documented fields');

# ---- stats detail ----
cmd_is($sock, "stats detail on\r\n", "OK\r\n", 'stats detail on');
is(stats($sock, 'settings')->{detail_enabled}, 'yes', 'detail_enabled yes');
cmd_is($sock, "set pre:a 0 0 1\r\nx\r\nget pre:a pre:b nodelim\r\ndelete pre:a\r\n",
       "STORED\r\nVALUE pre:a 0 1\r\nx\r\nEND\r\nDELETED\r\n");
cmd_is($sock, "stats detail dump\r\n", "PREFIX pre get 2 hit 1 set 1 del 1\r\nEND\r\n",
       'stats detail dump: per-prefix counters');
cmd_is($sock, "stats detail off\r\n", "OK\r\n", 'stats detail off');
cmd_is($sock, "get pre:a\r\n", "END\r\n");
cmd_is($sock, "stats detail dump\r\n", "PREFIX pre get 2 hit 1 set 1 del 1\r\nEND\r\n",
       'nothing is counted while off');
cmd_is($sock, "stats detail\r\n", "CLIENT_ERROR usage: stats detail on|off|dump\r\n", 'stats detail alone');
cmd_is($sock, "stats detail maybe\r\n", "CLIENT_ERROR usage: stats detail on|off|dump\r\n", 'stats detail bad word');

# -D sets the delimiter and turns detail on.
my $dsrv = start_server('-D /');
my $ds = $dsrv->new_sock;
is(stats($ds, 'settings')->{stat_key_prefix}, '/', '-D sets stat_key_prefix');
is(stats($ds, 'settings')->{detail_enabled}, 'yes', '-D turns detail on');
cmd_is($ds, "set a/b 0 0 1\r\nx\r\nset c:d 0 0 1\r\nx\r\n", "STORED\r\nSTORED\r\n");
cmd_is($ds, "stats detail dump\r\n", "PREFIX a get 0 hit 0 set 1 del 0\r\nEND\r\n", 'prefix split on -D');

# ---- stats cachedump ----
my $dump = start_server();
my $dd = $dump->new_sock;
my $exp = int(time) + 1000;
cmd_is($dd, "set cd1 0 0 5\r\nhello\r\nset cd2 0 $exp 5\r\nworld\r\n", "STORED\r\nSTORED\r\n");
my $ds_items = stats($dd, 'items');
my ($dcls) = map { /^items:(\d+):number$/ ? $1 : () } keys %$ds_items;
# memcached dumps one LRU segment, which new items reach after a moment.
my %dumped;
wait_until(sub {
    send_bytes($dd, "stats cachedump $dcls 0\r\n");
    %dumped = ();
    while (defined(my $l = read_line($dd))) {
        last if $l eq "END\r\n";
        $dumped{$1} = [$2, $3] if $l =~ /^ITEM (\S+) \[(\d+) b; (\d+) s\]\r\n\z/;
    }
    return keys %dumped == 2;
}, 10, 0.2);
is_deeply([sort keys %dumped], [qw(cd1 cd2)], 'stats cachedump lists the items of the class');
is($dumped{cd1}[0], 5, 'with their size');
is($dumped{cd1}[1], 0, 'and 0 for no expiry');
cmp_ok(abs(($dumped{cd2}[1] // 0) - $exp), '<=', 2, 'or the absolute expiry time');
cmd_like($dd, "stats cachedump $dcls 1\r\n", qr/^ITEM cd[12] /, 'cachedump limit 1');
expect_is($dd, "END\r\n", 'only one item');
cmd_is($dd, "stats cachedump 200 0\r\n", "CLIENT_ERROR Illegal slab id\r\n", 'cachedump of a bad class');
cmd_is($dd, "stats cachedump x 0\r\n", "CLIENT_ERROR bad command line format\r\n", 'cachedump with a word');
cmd_is($dd, "stats cachedump\r\n", "CLIENT_ERROR bad command line\r\n", 'cachedump without arguments');

# --disable-dumping (long form: -X is replication's in memcachedrep).
my $nodump = start_server('--disable-dumping');
my $nd = $nodump->new_sock;
is(stats($nd, 'settings')->{dump_enabled}, 'no', 'dump_enabled no');
cmd_is($nd, "stats cachedump 1 0\r\n", "CLIENT_ERROR stats cachedump not allowed\r\n",
       'cachedump disabled');
cmd_is($nd, "lru_crawler metadump all\r\n", "ERROR metadump not allowed\r\n",
       'metadump disabled');

# ---- unknown groups ----
cmd_is($sock, "stats nonsense\r\n", "ERROR\r\n", 'unknown stats group');

done_testing;
