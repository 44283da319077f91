#!/usr/bin/perl
# mn and me, meta commands mixed with the classic ones on one connection,
# long quiet pipelines, binary keys through base64, and a stream of
# malformed meta lines that must only ever get error lines.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

# ---- mn ----
cmd_is($sock, "mn\r\n", "MN\r\n", 'mn');
cmd_is($sock, "mn extra words\r\n", "MN\r\n", 'mn ignores its arguments');

# ---- me ----
cmd_is($sock, "me missing\r\n", "EN\r\n", 'me miss');
cmd_is($sock, "me\r\n", "CLIENT_ERROR bad command line format\r\n", 'me without a key');
cmd_is($sock, "me " . ('k' x 251) . "\r\n", "CLIENT_ERROR bad command line format\r\n", 'me key too long');
cmd_is($sock, "set dbg 0 0 5\r\nvalue\r\n", "STORED\r\n");
cmd_like($sock, "me dbg\r\n", qr/^ME dbg exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=\d+\r\n\z/, 'me hit');
cmd_is($sock, "mg dbg\r\n", "HD\r\n");
cmd_like($sock, "me dbg extra\r\n", qr/^ME dbg exp=-1 la=\d+ cas=\d+ fetch=yes cls=\d+ size=\d+\r\n\z/,
         'fetch=yes after a read; extra words ignored');
my $t0 = time;
cmd_is($sock, "set dbg 0 100 5\r\nvalue\r\n", "STORED\r\n");
SKIP: {
    skip 'memcached 1.6.18 prints exp with the wrong sign', 1 unless is_memcachedrep();
    # The TTL left, counted down by the server's clock since the set (one
    # step per second boundary that may have passed, see cmd_clock_is).
    send_bytes($sock, "me dbg\r\n");
    my $line = read_line($sock) // '';
    my $steps = 1 + int(time - $t0 + 0.25);
    my $left = join '|', map { 100 - $_ } 0 .. $steps;
    like($line, qr/^ME dbg exp=(?:$left) la=\d+ cas=\d+ fetch=no /, 'exp counts down');
}
cmd_is($sock, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
SKIP: {
    skip 'memcached 1.6.18 returns the decoded key', 1 unless is_memcachedrep();
    cmd_like($sock, "me YQ== b\r\n", qr/^ME YQ== exp=-1 /, 'me b: the key comes back in base64');
}
cmd_is($sock, "me YQ b\r\n", "CLIENT_ERROR bad command line format\r\n", 'me b with bad base64');
my $s0 = stats($sock);
cmd_like($sock, "me a\r\n", qr/^ME a /);
is(stats($sock)->{cmd_meta} - $s0->{cmd_meta}, 1, 'me counts in cmd_meta');

# ---- Meta and classic commands on one connection ----
cmd_is($sock, "ms mix 3 F9\r\nabc\r\nget mix\r\n", "HD\r\nVALUE mix 9 3\r\nabc\r\nEND\r\n",
       'ms then get');
cmd_is($sock, "append mix 0 0 1\r\nd\r\nmg mix v\r\n", "STORED\r\nVA 4\r\nabcd\r\n", 'append then mg');
cmd_is($sock, "set num 0 0 1\r\n7\r\nma num v\r\nincr num 1\r\nma num MD v\r\n",
       "STORED\r\nVA 1\r\n8\r\n9\r\nVA 1\r\n8\r\n", 'ma and incr');
send_bytes($sock, "gets mix\r\n");
my ($cas) = (read_line($sock) // '') =~ /^VALUE mix 9 4 (\d+)\r\n/;
read_line($sock); read_line($sock);
cmd_is($sock, "mg mix c\r\n", "HD c$cas\r\n", 'gets and mg c agree');
cmd_is($sock, "md mix\r\ndelete mix\r\n", "HD\r\nNOT_FOUND\r\n", 'md then delete');

# ---- A long quiet pipeline: hits answered, misses silent, mn last ----
my ($req, $want) = ('', '');
for my $i (1 .. 300) {
    $req .= "ms p$i " . length($i) . " q\r\n$i\r\n" if $i % 3;
}
for my $i (1 .. 300) {
    $req .= "mg p$i v q k\r\n";
    $want .= "VA " . length($i) . " kp$i\r\n$i\r\n" if $i % 3;
}
cmd_is($sock, "${req}mn\r\n", "${want}MN\r\n", '300 quiet gets in one batch');

# Values bigger than the output bound, pipelined.
my $big = 'v' x 300_000;
send_bytes($sock, "ms big 300000\r\n$big\r\n");
is(read_line($sock), "HD\r\n", 'a big value');
send_bytes($sock, "mg big v\r\n" x 20 . "mn\r\n");
my $ok = 1;
for (1 .. 20) {
    $ok &&= (read_line($sock) // '') eq "VA 300000\r\n";
    $ok &&= (read_bytes($sock, 300_002) // '') eq "$big\r\n";
}
ok($ok, '20 big values in one batch');
is(read_line($sock), "MN\r\n", 'then mn');

# ---- Binary keys ----
my @keys = ("a b", "new\nline", "\x00\x01\xff", "tab\there", 'x' x 186);
for my $k (@keys) {
    my $b64 = encode_b64($k);
    cmd_is($sock, "ms $b64 2 b\r\nbk\r\n", "HD\r\n", 'ms with a binary key ' . length($k));
    cmd_is($sock, "mg $b64 b v k\r\n", "VA 2 k$b64 b\r\nbk\r\n", 'mg finds it') if is_memcachedrep();
    cmd_is($sock, "mg $b64 b s\r\n", "HD s2\r\n", 'mg finds it (s)');
    cmd_is($sock, "ma $b64 b\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    cmd_is($sock, "md $b64 b\r\n", "HD\r\n", 'md removes it');
}
cmd_is($sock, "ms " . encode_b64('y' x 188) . " 1 b\r\nx\r\n",
       "CLIENT_ERROR bad command line format\r\nERROR\r\n", 'encoded key longer than 250');

# RFC 4648 base64 with padding (written here so the test needs no module).
sub encode_b64 {
    my ($s) = @_;
    my @d = ('A' .. 'Z', 'a' .. 'z', 0 .. 9, '+', '/');
    my $out = '';
    for (my $i = 0; $i < length $s; $i += 3) {
        my $chunk = substr($s, $i, 3);
        my $n = length $chunk;
        my $v = unpack('N', "\0" . $chunk . ("\0" x (3 - $n)));
        $out .= join '', map { $d[($v >> (18 - 6 * $_)) & 63] } 0 .. $n;
        $out .= '=' x (3 - $n);
    }
    return $out;
}

# ---- Malformed lines: only error lines, the server stays up ----
srand(4);
my @words = ('mg', 'ms', 'md', 'ma', 'me', 'mn', 'k', 'YQ==', 'b', 'v', 'q', 'O', 'T', 'N5', 'C',
             'MA', 'M', 'D-', 'J', 'E', 'I', 'x', 'Z', '10', '-1', "\x00", "\xff", 'P', ' ');
my $junk = '';
for (1 .. 400) {
    my $line = join(' ', map { $words[int rand @words] } 0 .. int rand 8);
    $line = "m" . substr($line, 1) if rand() < 0.5;
    $junk .= "$line\r\n";
}
my $junk_sock = $srv->new_sock;
send_bytes($junk_sock, $junk);
read_available($junk_sock, 0.5);
close $junk_sock;
ok($srv->alive, 'the server survived 400 malformed meta lines');
my $fresh = $srv->new_sock;
cmd_is($fresh, "mn\r\n", "MN\r\n", 'and still answers');

done_testing;
