#!/usr/bin/perl
# PHP sessions on a replicated pair (issue 6, item 4), with Debian's php-cli
# and both session handlers users have: php-memcache
# (session.save_handler=memcache) and php-memcached
# (session.save_handler=memcached, text protocol).  A session written
# through node A is read through node B; A is killed and the session is
# still on B; A is restarted empty and gets the session back from B.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Test::More;

use MemcachedTest;
use E2E;

plan skip_all => 'replication is memcachedrep\'s (the binary under test is memcached)'
    unless is_memcachedrep();
need_packages(qw(php-cli php-memcache php-memcached));

my $dir = tempdir('mcr-php.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $script = "$dir/session.php";
open my $fh, '>', $script or die "$script: $!";
print $fh <<'PHP';
<?php
// php session.php write|read SESSION_ID: write a session, or print it as JSON.
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
ini_set('session.cache_limiter', '');
session_id($argv[2]);
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(1);
}
if ($argv[1] === 'write') {
    $_SESSION['user'] = 'alice';
    $_SESSION['cart'] = [3, 1, 4, 1, 5];
    $_SESSION['visits'] = 42;
    echo "written\n";
} else {
    echo json_encode($_SESSION), "\n";
}
session_write_close();
PHP
close $fh;

my $WANT = '{"user":"alice","cart":[3,1,4,1,5],"visits":42}';

# Each handler: its php -d settings for a server on $port.
my %handlers = (
    memcache => sub {
        ('-d', 'session.save_handler=memcache',
         '-d', "session.save_path=tcp://127.0.0.1:$_[0]")
    },
    memcached => sub {
        ('-d', 'session.save_handler=memcached', '-d', "session.save_path=127.0.0.1:$_[0]",
         '-d', 'memcached.sess_binary_protocol=Off')
    },
);
my %sid = (memcache => "e2ememcache$$", memcached => "e2ememcached$$");

sub php_session {
    my ($handler, $port, $mode) = @_;
    my ($rc, $out) = run_cmd('php', $handlers{$handler}->($port), $script, $mode, $sid{$handler});
    $out =~ s/\s+\z//;
    return $rc == 0 ? $out : "exit $rc: $out";
}

# Wait up to 10 s for the session to read back whole through $port.
sub session_on {
    my ($handler, $port) = @_;
    my $last;
    my $ok = wait_until(sub { ($last = php_session($handler, $port, 'read')) eq $WANT }, 10, 0.2);
    return $ok ? $WANT : $last;
}

my ($pa, $pb, $ra, $rb) = map { free_port() } 1 .. 4;
my $args_a = "-p $pa -X $ra -x 127.0.0.1:$rb";
my $node_a = start_server($args_a);
my $node_b = start_server("-p $pb -X $rb -x 127.0.0.1:$ra");
ok(wait_until(sub { streaming($node_a) && streaming($node_b) }, 20, 0.1), 'the pair replicates');

for my $h (sort keys %handlers) {
    is(php_session($h, $pa, 'write'), 'written', "$h: session written through node A");
    # Read through B only once the write is there: a session handler that
    # finds no session writes an empty one back (php-memcached does), and
    # that newer write would win on both nodes.
    ok(wait_until(sub { my $n = curr_items($node_a); $n > 0 && curr_items($node_b) == $n }, 10, 0.05),
       "$h: the write reached node B");
    is(session_on($h, $pb), $WANT, "$h: the session is read through node B");
}

$node_a->signal('KILL');
$node_a->wait_exit(10);
for my $h (sort keys %handlers) {
    is(session_on($h, $pb), $WANT, "$h: node A killed, the session is still on node B");
}

my $node_a2 = start_server($args_a);
ok(wait_until(sub { streaming($node_a2) }, 20, 0.1), 'node A restarted, the pair replicates again');
for my $h (sort keys %handlers) {
    is(session_on($h, $pa), $WANT, "$h: the session is back on node A");
}

$_->stop for $node_a2, $node_b;
done_testing;

sub curr_items {
    my ($srv) = @_;
    my $sock = eval { $srv->new_sock } or return -1;
    return stats($sock)->{curr_items} // -1;
}

sub streaming {
    my ($srv) = @_;
    my $sock = eval { $srv->new_sock } or return 0;
    my $st = stats($sock);
    return ($st->{repl_state} // '') eq 'streaming';
}
