#!/usr/bin/perl
# mg: every flag of the meta get (memcached-protocol.txt, "Meta Get"):
# returned values in request order, quiet mode, CAS check, TTL update,
# vivify on miss, recache and the W/X/Z markers, base64 keys, opaque, and
# the error lines of bad flags and tokens.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcachedTest;

my $srv  = start_server();
my $sock = $srv->new_sock;

# The CAS of a key, read with mg.
sub cas_of {
    my ($key) = @_;
    send_bytes($sock, "mg $key c\r\n");
    my $line = read_line($sock) // '';
    return $line =~ /^HD c(\d+)/ ? $1 : undef;
}

cmd_is($sock, "set foo 5 0 3\r\nbar\r\n", "STORED\r\n");

# ---- Hits and misses ----
cmd_is($sock, "mg foo\r\n", "HD\r\n", 'hit without flags');
cmd_is($sock, "mg foo v\r\n", "VA 3\r\nbar\r\n", 'v returns the value');
cmd_is($sock, "mg missing\r\n", "EN\r\n", 'miss');
cmd_is($sock, "mg missing v\r\n", "EN\r\n", 'miss with v');
cmd_is($sock, "mg missing k O42 v t\r\n", "EN kmissing O42\r\n",
       'a miss echoes k and O only, in request order');

my $cas = cas_of('foo');
ok($cas, 'c returns the CAS');
cmd_is($sock, "mg foo s v f t c k O123\r\n",
       "VA 3 s3 f5 t-1 c$cas kfoo O123\r\nbar\r\n",
       'flags come back in request order');
cmd_is($sock, "mg foo O123 k c t f v s\r\n",
       "VA 3 O123 kfoo c$cas t-1 f5 s3\r\nbar\r\n", 'any order');
cmd_is($sock, "mg foo vv\r\n", "VA 3\r\nbar\r\n", 'a token after v is ignored');
cmd_is($sock, "mg foo O\r\n", "HD O\r\n", 'an empty opaque');
cmd_is($sock, "mg foo P Lpath/ v\r\n", "VA 3\r\nbar\r\n", 'P and L are ignored');
cmd_is($sock, "mg   foo   v  \r\n", "VA 3\r\nbar\r\n", 'extra spaces');
cmd_is($sock, "mg foo v\n", "VA 3\r\nbar\r\n", 'a bare \\n line end');

# ---- q: no EN on a miss; everything else still answered ----
cmd_is($sock, "mg missing q\r\nmg missing v q\r\nmg foo q v\r\nmg foo q\r\nmn\r\n",
       "VA 3\r\nbar\r\nHD\r\nMN\r\n", 'q hides misses only; mn ends the pipeline');
cmd_is($sock, "mg missing q k O1\r\nmn\r\n", "MN\r\n", 'q hides a miss with echoes too');

# ---- C: no value when the client holds this version ----
SKIP: {
    skip 'memcached 1.6.18 sends the value anyway', 2 unless is_memcachedrep();
    cmd_is($sock, "mg foo C$cas v\r\n", "HD\r\n", 'C matching drops the value');
    cmd_is($sock, "mg foo C$cas v c\r\n", "HD c$cas\r\n", 'C matching keeps other flags');
}
cmd_is($sock, "mg foo C1 v\r\n", "VA 3\r\nbar\r\n", 'C not matching returns the value');

# ---- h, l, u: hit-before and last access as before the command ----
my $t0 = time;
cmd_is($sock, "set fresh 0 0 1\r\nx\r\n", "STORED\r\n");
cmd_clock_is($sock, "mg fresh h l\r\n", "HD h0 l%d\r\n", age => 0, since => $t0,
             name => 'first fetch: not hit before');
cmd_is($sock, "mg fresh h\r\n", "HD h1\r\n", 'second fetch: hit before');
cmd_is($sock, "set fresh 0 0 1\r\nx\r\n", "STORED\r\n");
cmd_is($sock, "mg fresh u h\r\n", "HD h0\r\n", 'u: fetch without marking');
cmd_is($sock, "mg fresh h\r\n", "HD h0\r\n", 'so the next fetch still sees h0');
cmd_is($sock, "mg fresh h\r\n", "HD h1\r\n", 'and then h1');

# ---- t and T ----
# (A TTL read back counts down with the server's clock: cmd_clock_is.)
$t0 = time;
cmd_is($sock, "set ttl 0 100 1\r\nt\r\n", "STORED\r\n");
cmd_clock_is($sock, "mg ttl t\r\n", "HD t%d\r\n", ttl => 100, since => $t0, name => 't: seconds left');
$t0 = time;
cmd_clock_is($sock, "mg ttl T50 t\r\n", "HD t%d\r\n", ttl => 50, since => $t0,
             name => 'T then t: the new TTL');
my $t1 = time;
cmd_clock_is($sock, "mg ttl t T60\r\n", "HD t%d\r\n", ttl => 50, since => $t0,
             name => 't then T: the TTL before');
cmd_clock_is($sock, "mg ttl t\r\n", "HD t%d\r\n", ttl => 60, since => $t1, name => 'T took effect');
cmd_is($sock, "mg ttl T0 t\r\n", "HD t-1\r\n", 'T0: never expires');
cmd_is($sock, "mg ttl T-1\r\n", "HD\r\n", 'T-1 expires the item');
cmd_is($sock, "mg ttl v\r\n", "EN\r\n", 'gone');
cmd_is($sock, "mg ttl T30 t\r\n", "EN\r\n", 'T on a miss');

# ---- N: vivify on miss; W to the creator, Z to the others ----
$t0 = time;
cmd_clock_is($sock, "mg viv N30 s t v\r\n", "VA 0 s0 t%d W\r\n\r\n", ttl => 30, since => $t0,
             name => 'N creates an empty item, W');
cmd_is($sock, "mg viv N30 s v\r\n", "VA 0 s0 Z\r\n\r\n", 'a second client sees Z');
cmd_is($sock, "mg viv\r\n", "HD Z\r\n", 'Z also without N');
cmd_is($sock, "ms viv 3 T60\r\nnew\r\n", "HD\r\n", 'the winner stores the value');
cmd_is($sock, "mg viv v\r\n", "VA 3\r\nnew\r\n", 'a stored value clears the token');
$t0 = time;
cmd_clock_is($sock, "mg viv2 N30 R30 t T100\r\n", "HD t%d W\r\n", ttl => 30, since => $t0,
             name => 'T applies to a vivified item');
cmd_clock_is($sock, "mg viv2 t\r\n", "HD t%d Z\r\n", ttl => 100, since => $t0,
             name => '... after t was answered');
cmd_is($sock, "mg viv3 N0 t f q\r\n", "HD t-1 f0 W\r\n", 'N0: a stub that never expires');
$t0 = time;
cmd_is($sock, "mg viv4 t N100 h\r\n", "HD t-1 h0 W\r\n", 't before N: the expiry before N applied');
cmd_clock_is($sock, "mg viv4 t h\r\n", "HD t%d h1 Z\r\n", ttl => 100, since => $t0,
             name => 'the stub has it, and counts as fetched');

# ---- R: recache when less TTL than the token is left ----
cmd_is($sock, "set rc 0 100 1\r\nr\r\n", "STORED\r\n");
cmd_is($sock, "mg rc R30 v\r\n", "VA 1\r\nr\r\n", 'enough TTL left: no win');
cmd_is($sock, "mg rc R200 v\r\n", "VA 1 W\r\nr\r\n", 'less TTL left than R: W');
cmd_is($sock, "mg rc R200 v\r\n", "VA 1 Z\r\nr\r\n", 'then Z for everyone else');
cmd_is($sock, "set rc 0 0 1\r\nr\r\n", "STORED\r\n");
cmd_is($sock, "mg rc R200\r\n", "HD\r\n", 'an item that never expires never wins');

# ---- Stale items (md I, ms I): X with W once, then Z ----
cmd_is($sock, "set st 0 0 2\r\nss\r\n", "STORED\r\n");
my $old = cas_of('st');
cmd_is($sock, "md st I\r\n", "HD\r\n", 'md I marks stale');
my $new = cas_of('st');
isnt($new, $old, 'md I bumps the CAS');
# (cas_of's mg already took the win token.)
cmd_is($sock, "mg st v\r\n", "VA 2 Z X\r\nss\r\n", 'stale: Z X after the token is out');
$t0 = time;
cmd_is($sock, "md st I T30\r\n", "HD\r\n", 'md I again puts the token back');
cmd_clock_is($sock, "mg st t v\r\n", "VA 2 t%d X W\r\nss\r\n", ttl => 30, since => $t0,
             name => 'X W to the first client');
cmd_is($sock, "mg st k O1 c\r\n", "HD kst O1 c" . cas_of_quiet('st') . " Z X\r\n",
       'markers come after the echoed flags');
cmd_is($sock, "set st 0 0 2\r\nok\r\n", "STORED\r\n");
cmd_is($sock, "mg st v\r\n", "VA 2\r\nok\r\n", 'a new value is no longer stale');

# The CAS of a key with mg u (no marks), for building expected lines.
sub cas_of_quiet {
    my ($key) = @_;
    my $s = $srv->new_sock;
    send_bytes($s, "mg $key c u\r\n");
    my $line = read_line($s) // '';
    return $line =~ /^HD c(\d+)/ ? $1 : 'none';
}

# ---- E: the CAS of a vivified item (1.6.45) ----
SKIP: {
    skip 'E on mg is newer than this memcached', 2 unless is_memcachedrep();
    cmd_is($sock, "mg ecas N30 E12345 c\r\n", "HD c12345 W\r\n", 'E sets a vivified CAS');
    cmd_is($sock, "mg ecas E999 c\r\n", "HD c12345 Z\r\n", 'E does not change a hit');
}

# ---- b: base64 keys ----
cmd_is($sock, "set bin 0 0 1\r\nb\r\n", "STORED\r\n");
cmd_is($sock, "mg Ymlu b v\r\n", "VA 1\r\nb\r\n", 'b decodes the key');
cmd_is($sock, "mg YmlupQ== b v\r\n", "EN\r\n", 'a binary key misses');
cmd_is($sock, "mg YmlupQ== b N0\r\n", "HD W\r\n", 'vivified under a binary key');
SKIP: {
    skip 'memcached 1.6.18 returns the decoded key', 1 unless is_memcachedrep();
    cmd_is($sock, "mg YmlupQ== b k v\r\n", "VA 0 kYmlupQ== b Z\r\n\r\n",
           'k returns a base64 key in base64, then b');
}
for my $bad ('Ymlu=', 'Ym', 'Y===', 'Ym!u', '!!!!') {
    cmd_is($sock, "mg $bad b v\r\n", "CLIENT_ERROR error decoding key\r\n", "bad base64 '$bad'");
}

# ---- Errors ----
my $long = 'k' x 251;
cmd_is($sock, "mg\r\n", "ERROR\r\n", 'no key');
cmd_is($sock, "mg $long v\r\n", "CLIENT_ERROR bad command line format\r\n", 'key too long');
cmd_is($sock, "mg " . ('k' x 250) . " v\r\n", "EN\r\n", 'a 250-byte key is fine');
cmd_is($sock, "mg foo Z\r\n", "CLIENT_ERROR invalid flag\r\n", 'unknown flag');
cmd_is($sock, "mg foo v 9\r\n", "CLIENT_ERROR invalid flag\r\n", 'a digit is no flag');
cmd_is($sock, "mg foo v v\r\n", "CLIENT_ERROR duplicate flag\r\n", 'duplicate flag');
cmd_is($sock, "mg foo k v k\r\n", "CLIENT_ERROR duplicate flag\r\n", 'duplicate flag later');
cmd_is($sock, "mg foo v v Z\r\n", "CLIENT_ERROR duplicate flag\r\n", 'the first fault decides');
cmd_is($sock, "mg foo Z v v\r\n", "CLIENT_ERROR invalid flag\r\n", 'the first fault decides (2)');
cmd_is($sock, "mg foo Tabc Z\r\n", "CLIENT_ERROR invalid flag\r\n", 'flags before tokens');
cmd_is($sock, "mg foo P P\r\n", "CLIENT_ERROR duplicate flag\r\n", 'P twice');
for my $f ('T', 'Tabc', 'N', 'N1x', 'R', 'Rx', 'C', 'C-1', 'C18446744073709551616') {
    cmd_is($sock, "mg foo $f\r\n", "CLIENT_ERROR bad token in command line format\r\n",
           "bad token '$f'");
}
cmd_is($sock, "mg foo Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n", 'D is parsed too');
cmd_is($sock, "mg foo Jx\r\n", "CLIENT_ERROR invalid numeric initial value\r\n", 'J is parsed too');
cmd_is($sock, "mg foo Fx\r\n", "CLIENT_ERROR bad command line format\r\n", 'F is parsed too');
cmd_is($sock, "mg foo MAB\r\n", "CLIENT_ERROR incorrect length for M token\r\n", 'M length');
cmd_is($sock, "mg foo D5 J5 MX v\r\n", "VA 3\r\nbar\r\n", 'flags mg has no use for are ignored');
cmd_is($sock, "mg foo Dx Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n",
       'the last bad token decides');
cmd_is($sock, "mg foo Tx Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n",
       'the last bad token decides (2)');
cmd_is($sock, "mg zz b Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n",
       'b is decoded in request order: a later bad token decides');
cmd_is($sock, "mg zz Tx b\r\n", "CLIENT_ERROR error decoding key\r\n", '... or a later bad key');
cmd_is($sock, "mg foo Fx Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n", 'F is looked at last');
cmd_is($sock, "mg zz b Fx\r\n", "CLIENT_ERROR error decoding key\r\n", 'after the key too');
my $o31 = 'o' x 31;
cmd_is($sock, "mg foo O$o31\r\n", "HD O$o31\r\n", 'a 31-byte opaque');
cmd_is($sock, "mg foo O${o31}x\r\n", "CLIENT_ERROR opaque token too long\r\n", '32 bytes is too long');
cmd_is($sock, "mg foo O${o31}x Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n",
       'tokens before the opaque length');
cmd_is($sock, "mg foo b O${o31}x\r\n", "CLIENT_ERROR error decoding key\r\n", 'key before the opaque');
cmd_is($sock, "mg ttl2 O${o31}x T30 N30\r\n", "CLIENT_ERROR opaque token too long\r\n",
       'an error changes nothing');
SKIP: {
    skip 'memcached 1.6.18 checks the opaque after acting', 1 unless is_memcachedrep();
    cmd_is($sock, "mg ttl2\r\n", "EN\r\n", '... nothing was vivified');
}
my $p17 = join(' ', ('P') x 17);
cmd_is($sock, "mg foo $p17\r\n", "CLIENT_ERROR duplicate flag\r\n", '19 words are read');
cmd_is($sock, "mg foo $p17 P\r\n", "CLIENT_ERROR options flags are too long\r\n", '20 words are too many');
cmd_is($sock, "mg foo v\r\n", "VA 3\r\nbar\r\n", 'the connection goes on after errors');

# ---- Counters: a hit with T is a touch, a vivified item a get hit ----
my $s0 = stats($sock);
cmd_is($sock, "mg foo v\r\nmg nokey v\r\nmg foo T0\r\nmg nokey2 T10\r\nmg newviv N10\r\n",
       "VA 3\r\nbar\r\nEN\r\nHD\r\nEN\r\nHD W\r\n");
my $s1 = stats($sock);
is($s1->{cmd_get} - $s0->{cmd_get}, 4, 'cmd_get: hit, miss, T miss, vivify');
is($s1->{get_hits} - $s0->{get_hits}, 2, 'get_hits: hit and vivify');
is($s1->{get_misses} - $s0->{get_misses}, 2, 'get_misses: both misses');
is($s1->{cmd_touch} - $s0->{cmd_touch}, 1, 'cmd_touch: the T hit');
is($s1->{touch_hits} - $s0->{touch_hits}, 1, 'touch_hits');
is($s1->{touch_misses} - $s0->{touch_misses}, 0, 'a T miss is a get miss');

done_testing;
