#!/usr/bin/perl
# A real binary-protocol client: Debian's python3-binary-memcached
# (bmemcached) runs a realistic sequence against the server -- set/get,
# add/replace, gets/cas, incr/decr, append-free multi-key calls, delete,
# stats, flush -- and every result must be what memcached gives.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use MemcachedTest;

my $python = '/usr/bin/python3';
plan skip_all => 'python3-binary-memcached is not installed (scripts/lib.sh installs it)'
    unless -x $python && system($python, '-c', 'import bmemcached') == 0;

my $dir = tempdir('mcr-bmc.XXXXXX', TMPDIR => 1, CLEANUP => 1);
open my $fh, '>', "$dir/client.py" or die "$dir/client.py: $!";
print $fh <<'PY';
import sys
import bmemcached

c = bmemcached.Client(('127.0.0.1:%s' % sys.argv[1],))
def show(name, value):
    print('%s: %r' % (name, value))

show('set', c.set('user:1', 'alice'))
show('get', c.get('user:1'))
show('get miss', c.get('user:404'))
show('set int', c.set('answer', 42))
show('get int', c.get('answer'))
show('set dict', c.set('profile', {'name': 'bob', 'langs': ['c', 'perl']}))
show('get dict', c.get('profile'))
show('add existing', c.add('user:1', 'mallory'))
show('add new', c.add('user:2', 'carol'))
show('replace missing', c.replace('user:3', 'dave'))
show('replace', c.replace('user:2', 'caroline'))
value, cas = c.gets('user:1')
show('gets', (value, cas > 0))
show('cas', c.cas('user:1', 'alice2', cas))
show('cas stale', c.cas('user:1', 'alice3', cas))
show('get after cas', c.get('user:1'))
show('incr missing', c.incr('hits', 1))
show('incr', c.incr('hits', 10))
show('decr', c.decr('hits', 3))
show('decr floor', c.decr('hits', 100))
show('set_multi failures', c.set_multi({'m:a': b'1', 'm:b': b'2', 'm:c': b'3'}))
show('get_multi', sorted(c.get_multi(['m:a', 'm:b', 'm:c', 'm:none']).items()))
show('delete', c.delete('user:2'))
show('delete missing', c.delete('user:2'))
show('get deleted', c.get('user:2'))
show('delete_multi', c.delete_multi(['m:a', 'm:b']))
show('get_multi after', sorted(c.get_multi(['m:a', 'm:b', 'm:c']).items()))
stats = list(c.stats().values())[0]
show('stats', all(k in stats for k in ('pid', 'curr_items', 'get_hits', 'cmd_set')))
show('big value', c.set('big', b'x' * 500000, compress_level=0))
show('big read', len(c.get('big')))
show('flush', c.flush_all())
show('get after flush', c.get('user:1'))
c.disconnect_all()
PY
close $fh;

my $srv = start_server();
my $out = qx{$python "$dir/client.py" @{[ $srv->port ]} 2>&1};
is($?, 0, 'the client script ran') or diag($out);
my $want = <<'EXPECTED';
set: True
get: 'alice'
get miss: None
set int: True
get int: 42
set dict: True
get dict: {'name': 'bob', 'langs': ['c', 'perl']}
add existing: False
add new: True
replace missing: False
replace: True
gets: ('alice', True)
cas: True
cas stale: False
get after cas: 'alice2'
incr missing: 0
incr: 10
decr: 7
decr floor: 0
set_multi failures: []
get_multi: [('m:a', b'1'), ('m:b', b'2'), ('m:c', b'3')]
delete: True
delete missing: True
get deleted: None
delete_multi: True
get_multi after: [('m:c', b'3')]
stats: True
big value: True
big read: 500000
flush: True
get after flush: None
EXPECTED
is($out, $want, 'every result as from memcached');

# What the client stored is what a text client reads.
my $t = $srv->new_sock;
cmd_is($t, "set shared 0 0 5\r\nhello\r\n", "STORED\r\n");
my $read = qx{$python -c 'import bmemcached,sys; print(bmemcached.Client(("127.0.0.1:%s" % sys.argv[1],)).get("shared"))' @{[ $srv->port ]}};
is($read, "hello\n", 'a text set read by the binary client');

done_testing;
