#!/usr/bin/perl
# A real binary-protocol client: Debian's php-memcached (libmemcached) with
# Memcached::OPT_BINARY_PROTOCOL on runs a realistic sequence -- set/get,
# add/replace, cas, increment/decrement with initial values, append/
# prepend, touch, multi-key calls, delete, version, stats, flush -- and
# every result and result code must be what memcached gives.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use MemcachedTest;

plan skip_all => 'php-cli and php-memcached are not installed (scripts/lib.sh installs them)'
    unless system('php -r \'exit(class_exists("Memcached") ? 0 : 1);\' >/dev/null 2>&1') == 0;

my $dir = tempdir('mcr-php.XXXXXX', TMPDIR => 1, CLEANUP => 1);
open my $fh, '>', "$dir/client.php" or die "$dir/client.php: $!";
print $fh <<'PHP';
<?php
$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
$m->setOption(Memcached::OPT_COMPRESSION, false);
$m->addServer('127.0.0.1', (int)$argv[1]);
function show($m, $name, $v) {
    printf("%s: %s [%s]\n", $name, json_encode($v), $m->getResultMessage());
}
show($m, 'set', $m->set('user:1', 'alice'));
show($m, 'get', $m->get('user:1'));
show($m, 'get miss', $m->get('user:404'));
show($m, 'set array', $m->set('profile', ['name' => 'bob', 'langs' => ['c', 'perl']], 3600));
show($m, 'get array', $m->get('profile'));
show($m, 'add existing', $m->add('user:1', 'mallory'));
show($m, 'add new', $m->add('user:2', 'carol'));
show($m, 'replace missing', $m->replace('user:3', 'dave'));
show($m, 'replace', $m->replace('user:2', 'caroline'));
$r = $m->get('user:1', null, Memcached::GET_EXTENDED);
show($m, 'get extended', [$r['value'], $r['cas'] > 0]);
show($m, 'cas', $m->cas($r['cas'], 'user:1', 'alice2'));
show($m, 'cas stale', $m->cas($r['cas'], 'user:1', 'alice3'));
show($m, 'get after cas', $m->get('user:1'));
show($m, 'increment missing', $m->increment('hits', 1));
show($m, 'increment with initial', $m->increment('hits', 1, 100));
show($m, 'increment', $m->increment('hits', 5));
show($m, 'decrement', $m->decrement('hits', 10));
show($m, 'decrement floor', $m->decrement('hits', 1000));
show($m, 'decrement with initial', $m->decrement('stock', 1, 50, 3600));
show($m, 'append', $m->append('user:1', '!'));
show($m, 'prepend', $m->prepend('user:1', '@'));
show($m, 'append missing', $m->append('user:404', '!'));
show($m, 'get appended', $m->get('user:1'));
show($m, 'touch', $m->touch('user:1', 3600));
show($m, 'touch missing', $m->touch('user:404', 3600));
show($m, 'setMulti', $m->setMulti(['m:a' => 1, 'm:b' => 'two', 'm:c' => [3]]));
show($m, 'getMulti', $m->getMulti(['m:a', 'm:b', 'm:c', 'm:none']));
show($m, 'delete', $m->delete('user:2'));
show($m, 'delete missing', $m->delete('user:2'));
show($m, 'deleteMulti', $m->deleteMulti(['m:a', 'm:b', 'm:none']));
show($m, 'getMulti after', $m->getMulti(['m:a', 'm:b', 'm:c']));
show($m, 'big', $m->set('big', str_repeat('x', 500000)));
show($m, 'big read', strlen($m->get('big')));
show($m, 'too big', $m->set('huge', str_repeat('x', 2000000)));
$v = $m->getVersion();
show($m, 'version', count($v) == 1 && preg_match('/^\d+\.\d+\.\d+$/', array_values($v)[0]) == 1);
$st = array_values($m->getStats())[0];
show($m, 'stats', isset($st['pid'], $st['curr_items'], $st['get_hits'], $st['cmd_set']));
show($m, 'flush', $m->flush());
show($m, 'get after flush', $m->get('user:1'));
show($m, 'counter after flush', $m->increment('after', 1, 7, 3600));
PHP
close $fh;

my $srv = start_server();
my $out = qx{php "$dir/client.php" @{[ $srv->port ]} 2>&1};
is($?, 0, 'the client script ran') or diag($out);
my $want = <<'EXPECTED';
set: true [SUCCESS]
get: "alice" [SUCCESS]
get miss: false [NOT FOUND]
set array: true [SUCCESS]
get array: {"name":"bob","langs":["c","perl"]} [SUCCESS]
add existing: false [CONNECTION DATA EXISTS]
add new: true [SUCCESS]
replace missing: false [NOT FOUND]
replace: true [SUCCESS]
get extended: ["alice",true] [SUCCESS]
cas: true [SUCCESS]
cas stale: false [CONNECTION DATA EXISTS]
get after cas: "alice2" [SUCCESS]
increment missing: false [NOT FOUND]
increment with initial: 100 [SUCCESS]
increment: 105 [SUCCESS]
decrement: 95 [SUCCESS]
decrement floor: 0 [SUCCESS]
decrement with initial: 50 [SUCCESS]
append: true [SUCCESS]
prepend: true [SUCCESS]
append missing: false [NOT STORED]
get appended: "@alice2!" [SUCCESS]
touch: true [SUCCESS]
touch missing: false [NOT FOUND]
setMulti: true [SUCCESS]
getMulti: {"m:a":1,"m:b":"two","m:c":[3]} [SUCCESS]
delete: true [SUCCESS]
delete missing: false [NOT FOUND]
deleteMulti: {"m:a":true,"m:b":true,"m:none":16} [NOT FOUND]
getMulti after: {"m:c":[3]} [SUCCESS]
big: true [SUCCESS]
big read: 500000 [SUCCESS]
too big: false [ITEM TOO BIG]
version: true [SUCCESS]
stats: true [SUCCESS]
flush: true [SUCCESS]
get after flush: false [NOT FOUND]
counter after flush: 7 [SUCCESS]
EXPECTED
is($out, $want, 'every result and result code as from memcached');

# What the client stored is what a text client reads.
mem_get_is($srv->new_sock, 'after', '7', name => 'a counter seeded by binary increment, read over text');

done_testing;
