#!/usr/bin/perl
# Administrative commands: version, verbosity, quit, shutdown (with and
# without -A), cache_memlimit, slabs reassign / automove, lru_crawler.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(WIFEXITED WEXITSTATUS);
use Test::More;
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;
my $VERSION = "VERSION " . expected_version() . "\r\n";

# ---- version ----
cmd_is($sock, "version\r\n", $VERSION, 'version');
like(expected_version(), qr/^\d+\.\d+\.\d+/, 'the version is a dotted number');
is(expected_version(), '1.6.45', 'memcachedrep speaks protocol level 1.6.45') if is_memcachedrep();

# ---- verbosity ----
cmd_is($sock, "verbosity 1\r\n", "OK\r\n", 'verbosity 1');
is(stats($sock, 'settings')->{verbosity}, 1, 'stats settings follows');
cmd_is($sock, "verbosity 0 noreply\r\nversion\r\n", $VERSION, 'verbosity noreply');
is(stats($sock, 'settings')->{verbosity}, 0, 'back to 0');
cmd_is($sock, "verbosity\r\n", "ERROR\r\n", 'verbosity without a level');
cmd_is($sock, "verbosity abc\r\n", "CLIENT_ERROR bad command line format\r\n", 'verbosity with a word');

# ---- quit ----
my $q = $srv->new_sock;
send_bytes($q, "set before_quit 0 0 1\r\nx\r\nquit\r\nset after_quit 0 0 1\r\ny\r\n");
my ($got, $closed) = read_available($q, 2 * timeout_scale());
is($got, "STORED\r\n", 'quit answers nothing');
ok($closed, 'quit closes the connection');
cmd_is($sock, "get before_quit after_quit\r\n", "VALUE before_quit 0 1\r\nx\r\nEND\r\n",
       'commands after quit are not run');

# ---- shutdown ----
cmd_is($sock, "shutdown\r\n", "ERROR: shutdown not enabled\r\n", 'shutdown without -A');
cmd_is($sock, "shutdown graceful\r\n", "ERROR: shutdown not enabled\r\n", 'shutdown graceful without -A');
ok($srv->alive, 'the server is still running');

for my $how ('shutdown', 'shutdown graceful') {
    my $a = start_server('-A');
    my $as = $a->new_sock;
    is(stats($as, 'settings')->{shutdown_command}, 'yes', "-A: shutdown_command yes ($how)");
    send_bytes($as, "$how\r\n");
    my ($out, $eof) = read_available($as, 5 * timeout_scale());
    ok($eof, "$how closes the connection");
    my $status = $a->wait_exit(10);
    ok(defined $status, "$how stops the server");
    ok(defined $status && WIFEXITED($status) && WEXITSTATUS($status) == 0, "$how: exit status 0")
        or diag("wait status " . ($status // 'undef'));
}

# ---- cache_memlimit ----
cmd_is($sock, "cache_memlimit 100\r\n", "OK\r\n", 'cache_memlimit 100');
is(stats($sock)->{limit_maxbytes}, 100 * 1024 * 1024, 'limit_maxbytes follows');
is(stats($sock, 'settings')->{maxbytes}, 100 * 1024 * 1024, 'so does maxbytes');
cmd_is($sock, "cache_memlimit 64 noreply\r\nversion\r\n", $VERSION, 'cache_memlimit noreply');
is(stats($sock)->{limit_maxbytes}, 64 * 1024 * 1024, 'back to 64 MB');
cmd_is($sock, "cache_memlimit 1\r\n", "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
       'cache_memlimit below 8 MB');
cmd_is($sock, "cache_memlimit 0\r\n", "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
       'cache_memlimit 0');
cmd_is($sock, "cache_memlimit\r\n", "ERROR\r\n", 'cache_memlimit without a value');
cmd_is($sock, "cache_memlimit abc\r\n", "ERROR\r\n", 'cache_memlimit with a word');
cmd_is($sock, "cache_memlimit -1\r\n", "ERROR\r\n", 'cache_memlimit negative');

# ---- slabs ----
cmd_is($sock, "set s 0 0 1\r\nx\r\n", "STORED\r\n");
cmd_is($sock, "slabs reassign 1 2\r\n", "NOSPARE source class has no spare pages\r\n", 'reassign without spare pages');
cmd_is($sock, "slabs reassign 99 1\r\n", "BADCLASS invalid src or dst class id\r\n", 'reassign from a bad class');
cmd_is($sock, "slabs reassign 1 99\r\n", "BADCLASS invalid src or dst class id\r\n", 'reassign to a bad class');
cmd_is($sock, "slabs reassign 2 2\r\n", "SAME src and dst class are identical\r\n", 'reassign to itself');
cmd_is($sock, "slabs reassign x y\r\n", "CLIENT_ERROR bad command line format\r\n", 'reassign with words');
cmd_is($sock, "slabs reassign\r\n", "ERROR\r\n", 'reassign without classes');
cmd_is($sock, "slabs\r\n", "ERROR\r\n", 'slabs alone');
cmd_is($sock, "slabs nonsense\r\n", "ERROR\r\n", 'unknown slabs subcommand');
for my $mode (0, 2, 1) {
    cmd_is($sock, "slabs automove $mode\r\n", "OK\r\n", "slabs automove $mode");
    is(stats($sock, 'settings')->{slab_automove}, $mode, "slab_automove is $mode");
}
cmd_is($sock, "slabs automove 3\r\n", "ERROR\r\n", 'slabs automove 3');
cmd_is($sock, "slabs automove x\r\n", "CLIENT_ERROR bad command line format\r\n", 'slabs automove with a word');
cmd_is($sock, "slabs automove\r\n", "ERROR\r\n", 'slabs automove without a mode');

# ---- lru_crawler ----
cmd_is($sock, "lru_crawler\r\n", "ERROR\r\n", 'lru_crawler alone');
cmd_is($sock, "lru_crawler nonsense\r\n", "ERROR\r\n", 'unknown lru_crawler subcommand');
cmd_is($sock, "lru_crawler crawl\r\n", "ERROR\r\n", 'crawl without classes');
cmd_is($sock, "lru_crawler crawl 99\r\n", "BADCLASS invalid class id\r\n", 'crawl of a bad class');
cmd_is($sock, "lru_crawler crawl x\r\n", "BADCLASS invalid class id\r\n", 'crawl of a word');
cmd_is($sock, "lru_crawler sleep 100\r\n", "OK\r\n", 'lru_crawler sleep');
is(stats($sock, 'settings')->{lru_crawler_sleep}, 100, 'lru_crawler_sleep follows');
cmd_is($sock, "lru_crawler sleep x\r\n", "CLIENT_ERROR bad command line format\r\n", 'sleep with a word');
cmd_is($sock, "lru_crawler sleep 2000000\r\n", "CLIENT_ERROR sleep must be one second or less\r\n",
       'sleep over a second');
cmd_is($sock, "lru_crawler tocrawl 0\r\n", "OK\r\n", 'lru_crawler tocrawl');
cmd_is($sock, "lru_crawler tocrawl x\r\n", "CLIENT_ERROR bad command line format\r\n", 'tocrawl with a word');

# A crawl reclaims expired items nobody asks for.  (Expiry 3: the items
# live at least 2 s on the whole-second clock, so the crawler that also
# runs by itself cannot have taken them before they are counted.)
cmd_is($sock, join('', map { "set exp$_ 0 3 1\r\nx\r\n" } 1 .. 50), "STORED\r\n" x 50);
my $items = stats($sock)->{curr_items};
cmp_ok($items, '>=', 50, 'short-lived items stored');
ok(wait_until(sub {
    send_bytes($sock, "lru_crawler crawl all\r\n");
    my $l = read_line($sock) // '';
    return 0 unless $l eq "OK\r\n" || $l =~ /^BUSY /;
    return stats($sock)->{curr_items} <= $items - 50;
}, 10 * timeout_scale(), 0.5), 'lru_crawler crawl all reclaims expired items');
cmp_ok(stats($sock)->{crawler_reclaimed}, '>=', 50, 'crawler_reclaimed counts them');

# metadump: one line per item (key, exp, la, cas, fetch ...), then END.
cmd_is($sock, "set md 0 0 2\r\nhi\r\nset md2 5 1000 3\r\nhi2\r\n", "STORED\r\nSTORED\r\n");
cmd_is($sock, "get md\r\n", "VALUE md 0 2\r\nhi\r\nEND\r\n");
my %md;
ok(wait_until(sub {
    send_bytes($sock, "lru_crawler metadump all\r\n");
    my $first = read_line($sock) // '';
    return 0 if $first =~ /^BUSY /;
    %md = ();
    for (my $l = $first; defined $l && $l ne "END\r\n"; $l = read_line($sock)) {
        my %f = map { split /=/, $_, 2 } split ' ', $l;
        $md{ $f{key} } = \%f if defined $f{key};
    }
    return 1;
}, 10, 0.2), 'lru_crawler metadump all answers');
ok($md{md} && $md{md2}, 'both items are listed');
is($md{md}{exp}, -1, 'exp -1 for no expiry');
cmp_ok(abs(($md{md2}{exp} // 0) - (time + 1000)), '<=', 3, 'exp is an absolute time');
is($md{md}{fetch}, 'yes', 'fetch yes for a fetched item');
is($md{md2}{fetch}, 'no', 'fetch no for an unfetched one');
like($md{md}{cas} // '', qr/^\d+$/, 'cas is listed');
like($md{md}{la} // '', qr/^\d+$/, 'la is listed');
cmd_is($sock, "lru_crawler metadump 99\r\n", "BADCLASS invalid class id\r\n", 'metadump of a bad class');

done_testing;
