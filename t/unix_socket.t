#!/usr/bin/perl
# -s: serve on a UNIX socket (and not on TCP); -a: the socket file's mode.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WIFEXITED WEXITSTATUS);
use Test::More;
use MemcachedTest;

my $VERSION = "VERSION " . expected_version() . "\r\n";

# Default mode 0700, and no TCP even when -p is given.
my $port = free_port();
my $srv  = start_server(unix_socket => 1, args => "-p $port");
my $path = $srv->socket_path;
ok(-S $path, 'the socket file exists');
is(sprintf('%04o', (stat $path)[2] & 07777), '0700', 'default mode 0700');
my $sock = $srv->new_sock;
cmd_is($sock, "version\r\n", $VERSION, 'version over the UNIX socket');
cmd_is($sock, "set foo 3 0 3\r\nbar\r\n", "STORED\r\n", 'set over the UNIX socket');
mem_get_is($sock, 'foo', 'bar', flags => 3);
my $set = stats($sock, 'settings');
is($set->{domain_socket}, $path, 'stats settings: domain_socket');
is($set->{umask}, 700, 'stats settings: umask');
ok(!IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1),
   'no TCP listener with -s');
my $c = stats($sock, 'conns');
ok((grep { /^\d+:listen_addr$/ && $c->{$_} eq "unix:$path" } keys %$c),
   'stats conns shows the socket as the listen address') or diag(explain($c));

# Several clients at once.
my @cl = map { $srv->new_sock } 1 .. 20;
send_bytes($cl[$_], "set k$_ 0 0 1\r\n" . ($_ % 10) . "\r\n") for 0 .. $#cl;
is(scalar(grep { (read_line($_) // '') eq "STORED\r\n" } @cl), 20, '20 clients on the socket');
my $h = mem_get_multi($sock, [map { "k$_" } 0 .. 19]);
is(scalar(keys %$h), 20, 'all their values are there');

# -a sets the mode.
for my $mode (qw(666 600 770)) {
    my $m = start_server(unix_socket => 1, args => "-a $mode");
    is(sprintf('%o', (stat $m->socket_path)[2] & 07777), $mode, "-a $mode");
    cmd_is($m->new_sock, "version\r\n", $VERSION, "served with -a $mode");
    is(stats($m->new_sock, 'settings')->{umask}, $mode, "stats settings: umask $mode");
}

# A stale socket file left by an earlier run is replaced.
$srv->stop;
my $dir = tempdir('mcsock.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $first = start_server(args => "-s $dir/s.sock");
$first->stop;
ok(-e "$dir/s.sock", 'a socket file is left after a stop') or diag('(memcached leaves it)');
my $second = start_server(args => "-s $dir/s.sock");
cmd_is($second->new_sock, "version\r\n", $VERSION, 'a server starts over a stale socket file');

# A path that is a regular file is not clobbered.
open my $fh, '>', "$dir/regular" or die;
print $fh "keep\n";
close $fh;
my $pid = fork;
if ($pid == 0) {
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    my @u = $> == 0 ? ('-u', 'root') : ();
    { no warnings 'exec'; exec memcached_bin(), '-s', "$dir/regular", @u; }
    POSIX::_exit(127);
}
my $exited = wait_until(sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, 10);
my $status = $?;
ok($exited, 'a server asked to listen on a regular file exits');
kill 'KILL', $pid unless $exited;
ok(WIFEXITED($status) && WEXITSTATUS($status) != 0, 'with a failure status');
ok(-f "$dir/regular" && -s _ == 5, 'the regular file is untouched');

done_testing;
