#!/usr/bin/perl
# Process set-up: -d detaches and -P records the daemon's pid; SIGHUP does
# not stop it, SIGTERM does and removes the pid file; -P works without -d
# too; root needs -u, and -u switches user.  memcachedrep also makes
# `memcached -d` wait until the daemon listens, so a port that can't be
# bound fails the command itself.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WIFEXITED WEXITSTATUS WNOHANG);
use Test::More;
use MemcachedTest;

my $ours = is_memcachedrep();
my $dir  = tempdir('mcdaemon.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @as_root = $> == 0 ? ('-u', 'root') : ();
my %daemons; # pid => 1, killed at the end whatever happens

END { kill 'KILL', keys %daemons if %daemons }

# Start the binary with @argv, its output in $dir/$tag.out and .err;
# returns its pid.
sub spawn {
    my ($tag, @argv) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', "$dir/$tag.out";
        open STDERR, '>', "$dir/$tag.err";
        { no warnings 'exec'; exec memcached_bin(), @argv; }
        POSIX::_exit(127);
    }
    return $pid;
}

# The wait status of child $pid once it exits, within $timeout seconds;
# undef if it is still running then.
sub exit_status {
    my ($pid, $timeout) = @_;
    my $status;
    wait_until(sub {
        return 0 unless waitpid($pid, WNOHANG) == $pid;
        $status = $?;
        return 1;
    }, $timeout);
    return $status;
}

# Run the binary with @argv and wait (10 s at most) for it to exit, as a
# shell would for `memcached -d ...`.  Returns (exit code or undef, stderr).
sub run_launcher {
    my (@argv) = @_;
    my $pid = spawn('launcher', @argv);
    my $status = exit_status($pid, 10);
    unless (defined $status) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    open my $fh, '<', "$dir/launcher.err" or die;
    my $err = do { local $/; <$fh> } // '';
    return ((defined $status && WIFEXITED($status) ? WEXITSTATUS($status) : undef), $err);
}

# Is the process there and not a zombie waiting for a reaper?
sub running {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // '';
    return $stat =~ /^\d+ \(.*\) ([A-Za-z])/ && $1 ne 'Z';
}

sub read_pidfile {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    my $line = <$fh> // '';
    return $line =~ /^(\d+)\n\z/ ? $1 : undef;
}

sub answers_version {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        or return 0;
    return send_bytes($s, "version\r\n") && (read_line($s) // '') =~ /^VERSION /;
}

# ---- -d and -P ----

{
    my $port = free_port();
    my $pidfile = "$dir/daemon.pid";
    my ($code, $err) = run_launcher('-d', '-P', $pidfile, '-p', $port, '-U', 0,
                                    '-l', '127.0.0.1', @as_root);
    is($code, 0, '-d: the launching command exits 0') or diag($err);
    my $pid;
    ok(wait_until(sub { $pid = read_pidfile($pidfile) }), '-d -P: the pid file appears');
    $daemons{$pid} = 1 if $pid;
    SKIP: {
        skip 'no pid file', 7 unless $pid;
        ok(running($pid), '-d -P: it names a live process');
        ok(wait_until(sub { answers_version($port) }), '-d: the daemon serves its port');

        kill 'HUP', $pid;
        ok(answers_version($port) && running($pid), 'SIGHUP: still running and serving');

        kill 'TERM', $pid;
        ok(wait_until(sub { !running($pid) }, 10), 'SIGTERM: the daemon exits');
        delete $daemons{$pid} unless running($pid);
        ok(!answers_version($port), 'SIGTERM: the port is closed');
        SKIP: {
            skip 'memcached 1.6.18 leaves its pid file behind', 1 unless $ours;
            ok(!-e $pidfile, 'SIGTERM: the pid file is removed');
        }
        is($err, '', '-d: nothing on the launching stderr');
    }
}

# ---- -P without -d ----

{
    my $pidfile = "$dir/foreground.pid";
    my $srv = start_server("-P $pidfile");
    is(read_pidfile($pidfile), $srv->pid, '-P without -d: the pid file holds our pid');
    $srv->stop;
    SKIP: {
        skip 'memcached 1.6.18 leaves its pid file behind', 1 unless $ours;
        ok(!-e $pidfile, '-P without -d: removed at exit');
    }
}

# ---- SIGTERM during start-up (memcachedrep) ----
# The pid file is written before the engine and the threads start; a
# SIGTERM sent the moment it appears must still end in a clean stop (exit
# 0, pid file removed), not a death by the signal's default action.

SKIP: {
    skip 'memcached 1.6.18 dies of a SIGTERM received during start-up', 3 unless $ours;
    my $pidfile = "$dir/early.pid";
    my $port = free_port();
    my $pid = spawn('early', '-P', $pidfile, '-p', $port, '-U', 0, '-t', 4, @as_root);
    $daemons{$pid} = 1;
    ok(wait_until(sub { -s $pidfile }, 10, 0.0005), 'early SIGTERM: the pid file appears');
    kill 'TERM', $pid;
    my $status = exit_status($pid, 20);
    delete $daemons{$pid} if defined $status;
    ok(defined $status && WIFEXITED($status) && WEXITSTATUS($status) == 0,
       'early SIGTERM: a clean exit, not a death by signal')
        or diag('wait status ' . ($status // 'none'));
    ok(!-e $pidfile, 'early SIGTERM: the pid file is removed');
}

# ---- -d reports a start-up failure (memcachedrep) ----

SKIP: {
    skip 'memcached detaches before binding and exits 0', 4 unless $ours;
    my $busy = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5,
                                     Proto => 'tcp', ReuseAddr => 0) or die "bind: $!";
    my $port = $busy->sockport;
    my $pidfile = "$dir/busy.pid";
    my ($code, $err) = run_launcher('-d', '-P', $pidfile, '-p', $port, '-U', 0,
                                    '-l', '127.0.0.1', @as_root);
    is($code, 1, '-d on a taken port: the launching command exits 1');
    like($err, qr/\A[^\n]*\Q$port\E[^\n]*\n\z/, '-d on a taken port: one line naming the port')
        or diag($err);
    ok(!-e $pidfile, '-d on a taken port: no pid file left');
    my $pid = read_pidfile($pidfile);
    ok(!$pid || !running($pid), '-d on a taken port: no daemon left');
}

# ---- Root needs -u; -u switches user ----

SKIP: {
    skip 'not running as root', 2 unless $> == 0;
    my ($code, $err) = run_launcher('-p', 0, '-U', 0);
    ok(defined $code && $code != 0, 'root without -u: refused');
    like($err, qr/can't run as root without the -u switch/, 'root without -u: says why');
}

SKIP: {
    my $uid = getpwnam('nobody');
    skip 'needs root and a "nobody" user', 2 unless $> == 0 && defined $uid;
    my $srv = start_server('-u nobody');
    open my $fh, '<', '/proc/' . $srv->pid . '/status' or die;
    my ($line) = grep { /^Uid:/ } <$fh>;
    my @ids = (split ' ', $line)[1 .. 4];
    is_deeply(\@ids, [($uid) x 4], '-u nobody: every uid is nobody\'s');
    ok(answers_version($srv->port), '-u nobody: still serving');
    $srv->stop;
}

done_testing;
