#!/usr/bin/perl
# ms: the meta set (memcached-protocol.txt, "Meta Set"): the modes of M,
# client flags and TTL, CAS compare and invalidation, returned flags,
# quiet mode, base64 keys, and the errors, after which the value is
# discarded (or not, where memcached reads it as a command).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;


# ---- Plain set, flags and TTL ----
cmd_is($sock, "ms k1 3\r\nabc\r\n", "HD\r\n", 'set');
cmd_is($sock, "mg k1 v f t\r\n", "VA 3 f0 t-1\r\nabc\r\n", 'flags 0 and no expiry by default');
my $t0 = time;
cmd_is($sock, "ms k1 3 F7 T100\r\nxyz\r\n", "HD\r\n", 'F and T');
cmd_clock_is($sock, "mg k1 f t v\r\n", "VA 3 f7 t%d\r\nxyz\r\n", ttl => 100, since => $t0,
             name => 'stored with them');
cmd_is($sock, "ms k1 3 F4294967295\r\nxyz\r\n", "HD\r\n", 'largest flags');
cmd_is($sock, "mg k1 f\r\n", "HD f4294967295\r\n");
cmd_is($sock, "ms k1 0\r\n\r\n", "HD\r\n", 'empty value');
cmd_is($sock, "mg k1 v s\r\n", "VA 0 s0\r\n\r\n");
cmd_is($sock, "ms k1 3 T-1\r\nabc\r\n", "HD\r\n", 'negative TTL');
cmd_is($sock, "mg k1\r\n", "EN\r\n", 'is expired at once');
my $bin = join('', map { chr } 0 .. 255);
cmd_is($sock, "ms k1 256\r\n$bin\r\n", "HD\r\n", 'binary value');
cmd_is($sock, "mg k1 v\r\n", "VA 256\r\n$bin\r\n");

# ---- Returned flags ----
send_bytes($sock, "ms k2 2 c k O77\r\nhi\r\n");
my $line = read_line($sock) // '';
like($line, qr/^HD c(\d+) kk2 O77\r\n\z/, 'c k O in request order');
my ($c) = $line =~ /c(\d+)/;
is(meta_cas($sock, 'k2'), $c, 'c is the stored CAS');
cmd_is($sock, "ms k2 2 O1 k\r\nhi\r\n", "HD O1 kk2\r\n", 'O before k');
SKIP: {
    skip 'ms s is newer than this memcached', 2 unless is_memcachedrep();
    cmd_is($sock, "ms k2 2 s\r\nhi\r\n", "HD s2\r\n", 's: the stored size');
    cmd_is($sock, "ms k2 3 MA s k\r\nhey\r\n", "HD s5 kk2\r\n", 's after an append: the new size');
}

# ---- Modes ----
cmd_is($sock, "ms m 1 ME\r\na\r\n", "HD\r\n", 'ME (add) on a miss');
cmd_is($sock, "ms m 1 ME\r\nb\r\n", "NS\r\n", 'ME on a hit');
cmd_is($sock, "ms m 1 ME c O5 k\r\nb\r\n", "NS c0 O5 km\r\n", 'NS echoes c as 0, O, k');
cmd_is($sock, "ms m 1 MA\r\nz\r\n", "HD\r\n", 'MA (append)');
cmd_is($sock, "ms m 1 MP\r\n0\r\n", "HD\r\n", 'MP (prepend)');
cmd_is($sock, "mg m v\r\n", "VA 3\r\n0az\r\n", 'append and prepend');
cmd_is($sock, "ms m 1 MR\r\nr\r\n", "HD\r\n", 'MR (replace) on a hit');
cmd_is($sock, "ms nom 1 MR\r\nr\r\n", "NS\r\n", 'MR on a miss');
cmd_is($sock, "ms nom 1 MA\r\nr\r\n", "NS\r\n", 'MA on a miss');
cmd_is($sock, "ms nom 1 MP\r\nr\r\n", "NS\r\n", 'MP on a miss');
cmd_is($sock, "ms m 1 MS\r\ns\r\n", "HD\r\n", 'MS (set)');
cmd_is($sock, "mg m v\r\n", "VA 1\r\ns\r\n");
cmd_is($sock, "ms m 1 MS T0 F3\r\ns\r\nms m 1 MA T100 F9\r\nt\r\n", "HD\r\nHD\r\n");
cmd_is($sock, "mg m v f t\r\n", "VA 2 f3 t-1\r\nst\r\n", 'append keeps flags and TTL');
SKIP: {
    skip 'ms N (append vivify) is newer than this memcached', 3 unless is_memcachedrep();
    $t0 = time;
    cmd_is($sock, "ms viv 3 MA N50 T10 F4\r\nnew\r\n", "HD\r\n", 'MA with N creates on a miss');
    cmd_clock_is($sock, "mg viv v t f\r\n", "VA 3 t%d f4\r\nnew\r\n", ttl => 50, since => $t0,
                 name => 'with the TTL of N');
    cmd_is($sock, "ms viv 3 MP N50\r\nold\r\n", "HD\r\n");
}
for my $m ('MX', 'Ma', 'M1') {
    cmd_is($sock, "ms m 1 $m\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n", "mode $m");
}
cmd_is($sock, "ms m 1 M\r\nx\r\n", "CLIENT_ERROR incorrect length for M token\r\n", 'empty mode');
cmd_is($sock, "ms m 1 MAA\r\nx\r\n", "CLIENT_ERROR incorrect length for M token\r\n", 'long mode');
cmd_is($sock, "mg m v\r\n", "VA 2\r\nst\r\n", 'bad modes stored nothing');

# ---- CAS ----
my $cas = meta_cas($sock, 'm');
cmd_is($sock, "ms m 1 C$cas\r\nc\r\n", "HD\r\n", 'C matching');
cmd_is($sock, "ms m 1 C$cas\r\nd\r\n", "EX\r\n", 'C stale');
cmd_is($sock, "ms m 1 C0\r\nd\r\n", "EX\r\n", 'C0 compares too');
cmd_is($sock, "ms nocas 1 C5\r\nd\r\n", "NF\r\n", 'C on a miss');
cmd_is($sock, "ms nocas 1 C5 MR\r\nd\r\n", "NF\r\n", 'C with replace on a miss');
cmd_is($sock, "ms nocas 1 C5 ME\r\nd\r\n", "HD\r\n", 'add ignores C');
$cas = meta_cas($sock, 'm');
cmd_is($sock, "ms m 1 C1 MA\r\nx\r\n", "EX\r\n", 'append compares C');
cmd_is($sock, "ms m 1 C$cas MA\r\nx\r\n", "HD\r\n", 'append with the right C');
cmd_is($sock, "ms m 1 C1 MR\r\nx\r\n", "EX\r\n", 'replace compares C');
cmd_is($sock, "ms m 1 C1 q\r\nx\r\n", "EX\r\n", 'q does not hide EX');
cmd_is($sock, "mg m v\r\n", "VA 2\r\ncx\r\n");

# ---- I: a CAS older than the item's stores a stale value ----
$t0 = time;
cmd_is($sock, "set inv 0 100 2\r\nv1\r\n", "STORED\r\n");
cmd_is($sock, "set inv 0 100 2\r\nv2\r\n", "STORED\r\n");
$cas = meta_cas($sock, 'inv');
cmd_is($sock, "ms inv 2 I C" . ($cas - 1) . " T0\r\nv0\r\n", "HD\r\n", 'I with an older CAS stores');
cmd_clock_is($sock, "mg inv v t\r\n", "VA 2 t%d X W\r\nv0\r\n", ttl => 100, since => $t0,
             name => 'stale, keeping the old TTL');
cmd_is($sock, "mg inv v\r\n", "VA 2 Z X\r\nv0\r\n", 'the win token went out once');
$cas = meta_cas($sock, 'inv');
cmd_is($sock, "ms inv 2 I C" . ($cas + 1) . "\r\nv3\r\n", "EX\r\n", 'I with a newer CAS fails');
cmd_is($sock, "ms inv 2 I C1 MA\r\nv3\r\n", "EX\r\n", 'I does nothing for append');
cmd_is($sock, "ms inv 2 I\r\nv4\r\n", "HD\r\n", 'I without C is a plain set');
cmd_is($sock, "mg inv v\r\n", "VA 2\r\nv4\r\n", 'no longer stale');

# ---- E: explicit new CAS ----
SKIP: {
    skip 'E on ms is newer than this memcached', 4 unless is_memcachedrep();
    cmd_is($sock, "ms e 1 E5000 c\r\ne\r\n", "HD c5000\r\n", 'E sets the CAS');
    cmd_is($sock, "mg e c\r\n", "HD c5000\r\n");
    cmd_is($sock, "ms e 1 C5000 E6000 c\r\ne\r\n", "HD c6000\r\n", 'compare and set a new CAS');
    cmd_is($sock, "ms e 1 MA E7000 c\r\nf\r\n", "HD c7000\r\n", 'E with append');
}

# ---- q ----
cmd_is($sock, "ms q 1 q\r\na\r\nms q 1 ME q\r\nb\r\nms q 1 q O9 k\r\nc\r\nmn\r\n",
       "NS\r\nMN\r\n", 'q hides HD only');

# ---- b ----
cmd_is($sock, "ms Ymlu 3 b\r\nbin\r\n", "HD\r\n", 'base64 key');
cmd_is($sock, "mg bin v\r\n", "VA 3\r\nbin\r\n", 'stored under the decoded key');
send_bytes($sock, "ms YmlupQ== 1 b k c\r\nx\r\n");
like(read_line($sock) // '', qr/^HD kYmlupQ== b c\d+\r\n\z/, 'k returns a base64 key in base64');
cmd_is($sock, "ms Yml 1 b\r\nx\r\n", "CLIENT_ERROR error decoding key\r\n", 'bad base64, value discarded');

# ---- Errors ----
cmd_is($sock, "ms\r\n", "ERROR\r\n", 'no key');
cmd_is($sock, "ms k\r\n", "CLIENT_ERROR bad command line format\r\n", 'no length');
cmd_is($sock, "ms k abc\r\n", "CLIENT_ERROR bad command line format\r\n", 'bad length');
cmd_is($sock, "ms k -1\r\n", "CLIENT_ERROR bad command line format\r\n", 'negative length');
cmd_is($sock, "ms k 3x\r\n", "CLIENT_ERROR bad command line format\r\n", 'length with garbage');
my $long = 'k' x 251;
cmd_is($sock, "ms $long 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n",
       'key too long: the value is read as a command');
cmd_is($sock, "ms k 1 Z\r\nx\r\n", "CLIENT_ERROR invalid flag\r\n", 'unknown flag, value discarded');
cmd_is($sock, "ms k 1 T T\r\nx\r\n", "CLIENT_ERROR duplicate flag\r\n", 'duplicate flag');
cmd_is($sock, "ms k 1 Tx\r\nx\r\n", "CLIENT_ERROR bad token in command line format\r\n", 'bad T');
cmd_is($sock, "ms k 1 Cx\r\nx\r\n", "CLIENT_ERROR bad token in command line format\r\n", 'bad C');
cmd_is($sock, "ms k 1 Fx\r\nx\r\n", "CLIENT_ERROR bad command line format\r\n", 'bad F');
cmd_is($sock, "ms k 1 F-1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\n", 'negative F');
cmd_is($sock, "ms k 1 MX Tx\r\nx\r\n", "CLIENT_ERROR bad token in command line format\r\n",
       'tokens before the mode');
my $p16 = join(' ', ('P') x 16);
cmd_is($sock, "ms k 1 $p16\r\nx\r\n", "CLIENT_ERROR duplicate flag\r\n", '19 words are read');
cmd_is($sock, "ms k 1 $p16 P\r\nx\r\n", "CLIENT_ERROR options flags too long\r\nERROR\r\n",
       '20 words are too many, and the value is read as a command');
SKIP: {
    skip 'memcached 1.6.18 reads the value as a command', 1 unless is_memcachedrep();
    cmd_is($sock, "ms k 1 O" . ('o' x 32) . "\r\nx\r\n", "CLIENT_ERROR opaque token too long\r\n",
           'opaque too long, value discarded');
}
cmd_is($sock, "ms k 2\r\nabcd\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
       'value longer than announced');
cmd_is($sock, "mg k\r\n", "EN\r\n", 'nothing stored by the errors');

my $max = 1024 * 1024;
cmd_is($sock, "ms big 10\r\n0123456789\r\n", "HD\r\n");
send_bytes($sock, "ms big $max T0\r\n" . ('x' x $max) . "\r\n");
is(read_line($sock, 10), "SERVER_ERROR object too large for cache\r\n", 'too large');
cmd_is($sock, "mg big\r\n", "EN\r\n", 'a failed set removes the old value, as set does');
cmd_is($sock, "mn\r\n", "MN\r\n", 'the value was discarded');

# ---- Counters ----
my $s0 = stats($sock);
cmd_is($sock, "ms c1 1\r\na\r\nms c1 1 C1\r\nb\r\nms c2 1 C1\r\nb\r\nms c1 1 ME\r\nb\r\n",
       "HD\r\nEX\r\nNF\r\nNS\r\n");
my $s1 = stats($sock);
is($s1->{cmd_set} - $s0->{cmd_set}, 4, 'cmd_set counts every ms');
is($s1->{cas_badval} - $s0->{cas_badval}, 1, 'cas_badval');
is($s1->{cas_misses} - $s0->{cas_misses}, 1, 'cas_misses');

done_testing;
