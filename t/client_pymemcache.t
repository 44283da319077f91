#!/usr/bin/perl
# A real text-protocol client: Debian's python3-pymemcache runs a realistic
# sequence against the server -- set/get of strings, numbers and pickled
# objects, add/replace, append/prepend, gets/cas, incr/decr, multi-key
# get/set/delete, touch, noreply, a large value, stats, flush -- and every
# result must be what memcached gives (the expected output below is what
# memcached 1.6.18 answers to the same script).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use MemcachedTest;

my $python = '/usr/bin/python3';
plan skip_all => 'python3-pymemcache is not installed (scripts/lib.sh installs it)'
    unless -x $python && system($python, '-c', 'import pymemcache') == 0;

my $dir = tempdir('mcr-pym.XXXXXX', TMPDIR => 1, CLEANUP => 1);
open my $fh, '>', "$dir/client.py" or die "$dir/client.py: $!";
print $fh <<'PY';
import sys
from pymemcache.client.base import Client
from pymemcache import serde

c = Client(('127.0.0.1', int(sys.argv[1])), serde=serde.pickle_serde,
           connect_timeout=5, timeout=5)
def show(name, value):
    print('%s: %r' % (name, value))

show('version', c.version() != b'')
show('set', c.set('user:1', 'alice', noreply=False))
show('get', c.get('user:1'))
show('get miss', c.get('user:404'))
show('get default', c.get('user:404', default='none'))
show('set int', c.set('answer', 42, noreply=False))
show('get int', c.get('answer'))
show('set dict', c.set('profile', {'name': 'bob', 'langs': ['c', 'perl']}, noreply=False))
show('get dict', c.get('profile'))
show('add existing', c.add('user:1', 'mallory', noreply=False))
show('add new', c.add('user:2', 'carol', noreply=False))
show('replace missing', c.replace('user:3', 'dave', noreply=False))
show('replace', c.replace('user:2', 'caroline', noreply=False))
show('set bytes', c.set('log', b'line1;', noreply=False))
show('append', c.append('log', b'line2;', noreply=False))
show('prepend', c.prepend('log', b'line0;', noreply=False))
show('get appended', c.get('log'))
value, cas = c.gets('user:1')
show('gets', (value, int(cas) > 0))
show('cas', c.cas('user:1', 'alice2', cas, noreply=False))
show('cas stale', c.cas('user:1', 'alice3', cas, noreply=False))
show('cas missing', c.cas('user:404', 'x', cas, noreply=False))
show('get after cas', c.get('user:1'))
show('incr missing', c.incr('hits', 1, noreply=False))
show('set counter', c.set('hits', 5, noreply=False))
show('incr', c.incr('hits', 10, noreply=False))
show('decr', c.decr('hits', 3, noreply=False))
show('decr floor', c.decr('hits', 100, noreply=False))
show('incr big', c.incr('hits', 2**64 - 1, noreply=False))
show('set_many failures', c.set_many({'m:a': b'1', 'm:b': b'2', 'm:c': b'3'}, noreply=False))
show('get_many', sorted(c.get_many(['m:a', 'm:b', 'm:c', 'm:none']).items()))
multi = c.gets_many(['m:a', 'm:b'])
show('gets_many', sorted((k, v[0], int(v[1]) > 0) for k, v in multi.items()))
show('touch', c.touch('m:a', 100, noreply=False))
show('touch missing', c.touch('m:none', 100, noreply=False))
show('delete', c.delete('user:2', noreply=False))
show('delete missing', c.delete('user:2', noreply=False))
show('get deleted', c.get('user:2'))
show('delete_many', c.delete_many(['m:a', 'm:b'], noreply=False))
show('get_many after', sorted(c.get_many(['m:a', 'm:b', 'm:c']).items()))
show('noreply set', c.set('quiet', 'q', noreply=True))
show('get noreply', c.get('quiet'))
show('big value', c.set('big', b'x' * 500000, noreply=False))
show('big read', len(c.get('big')))
stats = c.stats()
show('stats', all(k in stats for k in (b'pid', b'curr_items', b'get_hits', b'cmd_set')))
show('stats curr_items', stats[b'curr_items'])
show('flush', c.flush_all(noreply=False))
show('get after flush', c.get('user:1'))
c.close()
PY
close $fh;

my $srv = start_server();
my $out = qx{$python "$dir/client.py" @{[ $srv->port ]} 2>&1};
is($?, 0, 'the client script ran') or diag($out);
my $want = <<'EXPECTED';
version: True
set: True
get: 'alice'
get miss: None
get default: 'none'
set int: True
get int: 42
set dict: True
get dict: {'name': 'bob', 'langs': ['c', 'perl']}
add existing: False
add new: True
replace missing: False
replace: True
set bytes: True
append: True
prepend: True
get appended: b'line0;line1;line2;'
gets: ('alice', True)
cas: True
cas stale: False
cas missing: None
get after cas: 'alice2'
incr missing: None
set counter: True
incr: 15
decr: 12
decr floor: 0
incr big: 18446744073709551615
set_many failures: []
get_many: [('m:a', b'1'), ('m:b', b'2'), ('m:c', b'3')]
gets_many: [('m:a', b'1', True), ('m:b', b'2', True)]
touch: True
touch missing: False
delete: True
delete missing: False
get deleted: None
delete_many: True
get_many after: [('m:c', b'3')]
noreply set: True
get noreply: 'q'
big value: True
big read: 500000
stats: True
stats curr_items: 8
flush: True
get after flush: None
EXPECTED
is($out, $want, 'every result as from memcached');

# What a text client stores is what pymemcache reads, and the reverse.
my $t = $srv->new_sock;
cmd_is($t, "set shared 0 0 5\r\nhello\r\n", "STORED\r\n");
my $read = qx{$python -c 'import sys; from pymemcache.client.base import Client; print(Client(("127.0.0.1", int(sys.argv[1]))).get("shared"))' @{[ $srv->port ]}};
is($read, "b'hello'\n", 'a text set read by pymemcache');
system($python, '-c', 'import sys; from pymemcache.client.base import Client; '
       . 'Client(("127.0.0.1", int(sys.argv[1]))).set("from_py", b"v", expire=0, noreply=False)',
       $srv->port);
cmd_is($t, "mg from_py v f\r\n", "VA 1 f0\r\nv\r\n", 'a pymemcache set read with mg');

done_testing;
