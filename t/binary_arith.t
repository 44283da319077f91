#!/usr/bin/perl
# Binary protocol: increment/decrement and their quiet forms: seeding a
# missing key with the initial value (or not, with expiry 0xffffffff), the
# 8-byte answer, wrap and floor, non-numeric values, CAS, expiry.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use MemcachedTest;
use BinProto;

my $srv = start_server();
my $s = $srv->new_sock;

sub counter { return res_pkt($_[0], 'ok', value => pack('Q>', $_[1]), cas => 'any', @_[2 .. $#_]) }

bin_is($s, bin_req('incr', key => 'c', extras => ext_incr(1, 10, 0), opaque => 1),
       counter('incr', 10, opaque => 1), 'incr of a missing key seeds the initial value (delta not applied)');
bin_is($s, bin_req('incr', key => 'c', extras => ext_incr(5, 10, 0)), counter('incr', 15), 'incr');
bin_is($s, bin_req('decr', key => 'c', extras => ext_incr(3, 10, 0)), counter('decr', 12), 'decr');
bin_is($s, bin_req('decr', key => 'c', extras => ext_incr(100, 10, 0)), counter('decr', 0), 'decr stops at 0');
bin_is($s, bin_req('get', key => 'c'), res_pkt('get', 'ok', extras => pack('N', 0), value => '0 ', cas => 'any'),
       'the value is decimal text, flags 0, a shorter result padded with a blank');
bin_is($s, bin_req('decr', key => 'd', extras => ext_incr(1, 7, 0)), counter('decr', 7), 'decr seeds too');
bin_is($s, bin_req('incr', key => 'nx', extras => ext_incr(1, 10, 0xffffffff), opaque => 2),
       res_pkt('incr', 'enoent', opaque => 2), 'expiry 0xffffffff: a missing key is Not found');
bin_is($s, bin_req('decr', key => 'nx', extras => ext_incr(1, 10, 0xffffffff)),
       res_pkt('decr', 'enoent'), 'the same for decr');
bin_is($s, bin_req('get', key => 'nx'), res_pkt('get', 'enoent'), 'and nothing was created');

# Wrap at 2^64, a 64-bit initial value.
bin_is($s, bin_req('incr', key => 'big', extras => ext_incr(1, 0xffffffffffffffff, 0)),
       counter('incr', 0xffffffffffffffff), 'initial value 2^64-1');
bin_is($s, bin_req('get', key => 'big'), res_pkt('get', 'ok', extras => pack('N', 0), value => '18446744073709551615', cas => 'any'),
       'stored in decimal');
bin_is($s, bin_req('incr', key => 'big', extras => ext_incr(2, 0, 0)), counter('incr', 1), 'incr wraps at 2^64');

# Values set by a store: flags stay, a shorter result is padded.
bin_set($s, 'n', '12', flags => 5);
bin_is($s, bin_req('incr', key => 'n', extras => ext_incr(1, 0, 0)), counter('incr', 13), 'incr of a stored number');
bin_is($s, bin_req('get', key => 'n'), res_pkt('get', 'ok', extras => pack('N', 5), value => '13', cas => 'any'),
       'flags kept');
bin_set($s, 'sp', '12 ');
bin_is($s, bin_req('incr', key => 'sp', extras => ext_incr(1, 0, 0)), counter('incr', 13), 'a number followed by a blank');
bin_set($s, 'txt', 'abc');
bin_is($s, bin_req('incr', key => 'txt', extras => ext_incr(1, 0, 0), opaque => 3),
       res_pkt('incr', 'delta_badval', opaque => 3), 'non-numeric value');
bin_set($s, 'huge', '123456789012345678901');
bin_is($s, bin_req('decr', key => 'huge', extras => ext_incr(1, 0, 0)),
       res_pkt('decr', 'delta_badval'), 'a number over 64 bits is non-numeric');

# CAS.
my $r = bin_get($s, 'n');
bin_is($s, bin_req('incr', key => 'n', extras => ext_incr(1, 0, 0), cas => $r->{cas} + 1000),
       res_pkt('incr', 'eexists'), 'incr with a stale CAS: Data exists');
my ($got) = bin_is($s, bin_req('incr', key => 'n', extras => ext_incr(1, 0, 0), cas => $r->{cas}),
                   counter('incr', 14), 'incr with the right CAS');
isnt($got->{cas}, $r->{cas}, 'answers the new CAS');
bin_is($s, bin_req('get', key => 'n'), res_pkt('get', 'ok', extras => pack('N', 5), value => '14', cas => $got->{cas}),
       'which the item has');
bin_is($s, bin_req('incr', key => 'new', extras => ext_incr(1, 3, 0), cas => 999), counter('incr', 3),
       'a CAS does not stop the seeding of a missing key');

# Quiet forms: nothing on success, the error otherwise.
bin_is($s, bin_req('incrq', key => 'q', extras => ext_incr(1, 10, 0))
           . bin_req('incrq', key => 'q', extras => ext_incr(1, 10, 0))
           . bin_req('decrq', key => 'q', extras => ext_incr(3, 10, 0))
           . bin_req('incrq', key => 'nx', extras => ext_incr(1, 10, 0xffffffff), opaque => 4)
           . bin_req('decrq', key => 'txt', extras => ext_incr(1, 10, 0), opaque => 5)
           . bin_req('noop', opaque => 6),
       [res_pkt('incrq', 'enoent', opaque => 4), res_pkt('decrq', 'delta_badval', opaque => 5),
        res_pkt('noop', 'ok', opaque => 6)], 'incrq/decrq answer failures only');
bin_is($s, bin_req('get', key => 'q'), res_pkt('get', 'ok', extras => pack('N', 0), value => '8 ', cas => 'any'),
       'and did their work');

# Expiry: given to a seeded key, left alone on an existing one.
bin_is($s, bin_req('incr', key => 'e1', extras => ext_incr(1, 1, 1)), counter('incr', 1), 'seed with a 1 s expiry');
bin_set($s, 'e2', '1');
bin_is($s, bin_req('incr', key => 'e2', extras => ext_incr(1, 1, 1)), counter('incr', 2), 'incr of a key without expiry');
# Long enough for e2 to have expired too had it taken the expiry; e1 is
# then polled (its expiry is due, the server's clock may lag a moment).
sleep 2.1;
ok(wait_until(sub { bin_get($s, 'e1')->{status} == $ST{enoent} }, 5 * timeout_scale(), 0.1),
   'the seeded key expired');
bin_is($s, bin_req('get', key => 'e2'), res_pkt('get', 'ok', extras => pack('N', 0), value => '2', cas => 'any'),
       'the existing key kept its expiry');

my $st = stats($srv->new_sock);
cmp_ok($st->{incr_hits}, '>=', 5, 'incr_hits counted');
cmp_ok($st->{incr_misses}, '>=', 2, 'incr_misses counted');
cmp_ok($st->{decr_hits}, '>=', 2, 'decr_hits counted');

done_testing;
