#!/usr/bin/perl
# The Debian package as its users get it (issue 6, items 1 and 4): build the
# .deb from this source tree with dpkg-buildpackage, check it with lintian,
# check "make install" / "make uninstall", install it next to Debian's
# memcached, run two replicated instances through the init script
# (/etc/default/memcachedrep and /etc/default/memcachedrep-b, distinct
# client and replication ports on loopback), talk to them as telnet would,
# stop and start them, upgrade over itself (conffiles kept), and purge
# (everything gone).  Root only; cleans up even when it fails.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::MD5;
use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use IO::Socket::IP;
use Test::More;

use MemcachedTest;
use E2E;

require_root();
skip_if_sanitizer_build();
need_packages(qw(build-essential debhelper lintian libevent-dev pkg-config autoconf automake
                 libtool));
# One package test at a time on a machine (two suites may run at once).
open my $lock, '>', '/run/lock/memcachedrep-pkg-test.lock' or die "lock file: $!";
flock($lock, LOCK_EX) or die "flock: $!";
plan skip_all => 'the memcachedrep package is installed on this machine; this test would '
               . 'replace and purge it (dpkg --purge memcachedrep to let it run)'
    if package_installed('memcachedrep');

my $INIT = '/etc/init.d/memcachedrep';
my $tmp = tempdir('mcr-pkg.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $src = "$tmp/memcachedrep";

# ---- Build and lint ----

copy_source_tree($src);
{
    local $ENV{DEB_BUILD_OPTIONS} = 'nocheck parallel=2';
    my ($rc, $log) = run_in($src, 'dpkg-buildpackage', '-us', '-uc', '-b');
    is($rc, 0, 'dpkg-buildpackage -us -uc -b builds the package')
        or BAIL_OUT("package build failed:\n" . substr($log, -4000));
    my @warnings = $log =~ /^(.*\b(?:warning|error): .*)$/mg;
    @warnings = grep { !/^dpkg-/ } @warnings;
    is(scalar(@warnings), 0, 'the build prints no compiler warning') or diag(join "\n", @warnings);
}
my ($deb) = glob("$tmp/memcachedrep_*.deb");
ok($deb && -f $deb, 'the .deb is there') or BAIL_OUT('no .deb');
{
    my ($rc, $out) = run_cmd('lintian', '--pedantic', $deb);
    my @errors = grep { /^E: / } split /\n/, $out;
    is(scalar(@errors), 0, 'lintian reports no error') or diag($out);
    my @warnings = grep { /^W: / } split /\n/, $out;
    diag("lintian warnings:\n" . join("\n", @warnings)) if @warnings;
}
my %content = map { m{ \./(\S+)$} ? ("/$1" => 1) : () } split /\n/, (run_cmd('dpkg', '-c', $deb))[1];
for my $file (qw(/usr/bin/memcachedrep /usr/bin/memcachedrep-tool /etc/default/memcachedrep
                 /etc/init.d/memcachedrep /lib/systemd/system/memcachedrep.service
                 /lib/systemd/system/memcachedrep@.service
                 /usr/share/man/man1/memcachedrep.1.gz /usr/share/man/man1/memcachedrep-tool.1.gz
                 /usr/libexec/memcachedrep/memcachedrep-check
                 /usr/share/doc/memcachedrep/examples/keepalived/keepalived.conf
                 /usr/share/doc/memcachedrep/examples/nutcracker/memcachedrep.yml)) {
    ok($content{$file}, "the package ships $file");
}
ok(!$content{'/usr/bin/memcached'}, 'and not /usr/bin/memcached (it coexists with memcached)');

# ---- make install / make uninstall (in the tree the package was built in) ----

{
    my $dest = "$tmp/destdir";
    my ($rc, $out) = run_in($src, 'make', 'install', "DESTDIR=$dest");
    is($rc, 0, 'make install') or diag($out);
    ok(-x "$dest/usr/bin/memcachedrep", 'make install puts the daemon in bindir as memcachedrep');
    ok(!-e "$dest/usr/bin/memcached", '...not as memcached');
    ok(-x "$dest/usr/bin/memcachedrep-tool", '...with memcachedrep-tool');
    ok(-f "$dest/usr/share/man/man1/memcachedrep.1", '...and the man page');
    ($rc, $out) = run_in($src, 'make', 'uninstall', "DESTDIR=$dest");
    is($rc, 0, 'make uninstall') or diag($out);
    my @left = grep { -f } split /\n/, (run_cmd('find', $dest, '-type', 'f'))[1];
    is(scalar(@left), 0, 'make uninstall removes every installed file') or diag("@left");
}

# ---- Install ----

my $user_existed = getpwnam('memcache') ? 1 : 0;
my $memcached_md5 = md5_of('/usr/bin/memcached');
on_cleanup(sub {
    return unless package_installed('memcachedrep');
    run_cmd($INIT, 'stop');
    run_cmd('dpkg', '--purge', 'memcachedrep');
});
run_ok('dpkg -i installs the package', 'dpkg', '-i', $deb);
ok(getpwnam('memcache'), 'the memcache system user exists');
is(md5_of('/usr/bin/memcached'), $memcached_md5, "Debian's memcached is untouched");
like((run_cmd('/usr/bin/memcachedrep', '-V'))[1], qr/^memcached 1\.6\.45$/m,
     '/usr/bin/memcachedrep runs');
my $defaults = slurp('/etc/default/memcachedrep');
like($defaults, qr/^DAEMON_ARGS="-m 64 -p 11211 -u memcache .*-P \/run\/memcachedrep\/memcachedrep\.pid"/m,
     '/etc/default/memcachedrep sets DAEMON_ARGS');
like($defaults, qr/^#DAEMON_ARGS=".*-x \S+"/m, '...with the replicated form commented');
like((run_cmd('dpkg-query', '-W', '-f=${Conffiles}', 'memcachedrep'))[1],
     qr{/etc/default/memcachedrep .*\n.*/etc/init\.d/memcachedrep }s,
     'the defaults file and the init script are conffiles');
SKIP: {
    skip 'systemd-analyze is not installed', 1 unless -x '/usr/bin/systemd-analyze';
    my ($rc, $out) = run_cmd('systemd-analyze', 'verify', 'memcachedrep.service',
                             'memcachedrep@b.service');
    is("$rc $out", '0 ', 'systemd-analyze verify finds nothing wrong in the units');
}

# The postinst may have started the default instance (where policy allows).
run_cmd($INIT, 'stop');

# ---- Two replicated instances through the init script ----

my ($pa, $pb, $ra, $rb) = map { free_port() } 1 .. 4;
my $conf_a = qq{DAEMON_ARGS="-m 16 -p $pa -U 0 -l 127.0.0.1 -u memcache -X $ra }
           . qq{-x 127.0.0.1:$rb -P /run/memcachedrep/memcachedrep.pid"\n};
write_file('/etc/default/memcachedrep', $conf_a);
write_file('/etc/default/memcachedrep-b',
           qq{DAEMON_ARGS="-m 16 -p $pb -U 0 -l 127.0.0.1 -u memcache -X $rb -x 127.0.0.1:$ra"\n});

my $out = run_ok("$INIT start", $INIT, 'start');
like($out, qr/memcachedrep-b/, 'it starts every instance (the main one and b)');
run_ok("$INIT start b (one instance)", $INIT, 'start', 'b');
run_ok("$INIT status main: the main instance runs", $INIT, 'status', 'main');
run_ok("$INIT status b: instance b runs", $INIT, 'status', 'b');
is((stat '/run/memcachedrep')[4], scalar getpwnam('memcache'),
   '/run/memcachedrep belongs to the daemons\' user');
like(slurp('/run/memcachedrep/memcachedrep-b.pid'), qr/^\d+$/, 'instance b has its pid file');

is(telnet($pa, "set greeting 0 0 5\r\nhello\r\n"), "STORED\r\n", 'telnet to A: set');
ok(wait_until(sub { telnet($pb, "get greeting\r\n") eq "VALUE greeting 0 5\r\nhello\r\nEND\r\n" },
              10, 0.1), 'telnet to B: get returns what was set on A');
is(telnet($pb, "set reply 0 0 3\r\nyes\r\n"), "STORED\r\n", 'telnet to B: set');
ok(wait_until(sub { telnet($pa, "get reply\r\n") eq "VALUE reply 0 3\r\nyes\r\nEND\r\n" },
              10, 0.1), 'and A has it');
ok(wait_until(sub { tool_repl($pa) == 0 }, 10, 0.1),
   'memcachedrep-tool repl: the link is streaming (exit 0)');

run_ok("$INIT stop b", $INIT, 'stop', 'b');
is((run_cmd($INIT, 'status', 'b'))[0], 3, "$INIT status b: not running (3)");
ok(wait_until(sub { tool_repl($pa) == 2 }, 10, 0.1),
   'memcachedrep-tool repl on A: the link is down (exit 2)');
is(telnet($pa, "set while_b_down 0 0 2\r\nok\r\n"), "STORED\r\n", 'A takes writes alone');
run_ok("$INIT start b", $INIT, 'start', 'b');
ok(wait_until(sub { telnet($pb, "get while_b_down\r\n") eq "VALUE while_b_down 0 2\r\nok\r\nEND\r\n" },
              10, 0.1), 'B, started again, gets what A took meanwhile');

# A rolling restart keeps the data: one node, wait for the link, the other.
run_ok("$INIT restart main", $INIT, 'restart', 'main');
ok(wait_until(sub { tool_repl($pa) == 0 }, 15, 0.1), 'A restarted; its link streams again');
run_ok("$INIT force-reload b", $INIT, 'force-reload', 'b');
ok(wait_until(sub { tool_repl($pb) == 0 }, 15, 0.1), 'B restarted; its link streams again');
for my $port ($pa, $pb) {
    is(telnet($port, "get greeting reply\r\n"),
       "VALUE greeting 0 5\r\nhello\r\nVALUE reply 0 3\r\nyes\r\nEND\r\n",
       "after the rolling restart, node on port $port still has every key");
}

# ---- Upgrade over itself: conffiles and instances kept ----

run_ok('dpkg -i again (upgrade path)', 'dpkg', '-i', $deb);
is(slurp('/etc/default/memcachedrep'), $conf_a, 'the edited /etc/default/memcachedrep is kept');
ok(-f '/etc/default/memcachedrep-b', 'the instance file is kept');
run_cmd($INIT, 'start');
run_cmd($INIT, 'start', 'b');
run_ok('both instances run after the upgrade', $INIT, 'status');

# ---- Stop and purge ----

my @pids = map { slurp($_) =~ /(\d+)/ ? $1 : () } glob('/run/memcachedrep/*.pid');
run_ok("$INIT stop", $INIT, 'stop');
is((run_cmd($INIT, 'status'))[0], 3, "$INIT status: nothing runs (3)");
ok(wait_until(sub { !grep { running($_) } @pids }, 15, 0.1), 'the daemons have exited');
run_ok('dpkg --purge', 'dpkg', '--purge', 'memcachedrep');
for my $path (qw(/usr/bin/memcachedrep /usr/bin/memcachedrep-tool /etc/default/memcachedrep
                 /etc/default/memcachedrep-b /etc/init.d/memcachedrep /run/memcachedrep
                 /lib/systemd/system/memcachedrep.service
                 /usr/libexec/memcachedrep /usr/share/doc/memcachedrep)) {
    ok(!-e $path, "purge removed $path");
}
ok(!glob('/etc/rc?.d/*memcachedrep'), 'purge removed the rc.d links');
# The user goes with the package unless it was there before, or Debian's
# memcached (which runs as it too) is installed.
my $user_kept = $user_existed || package_installed('memcached');
is(getpwnam('memcache') ? 1 : 0, $user_kept ? 1 : 0,
   $user_kept ? 'the memcache user, shared with memcached, is kept'
              : 'the memcache user created on install is removed');
is(md5_of('/usr/bin/memcached'), $memcached_md5, "Debian's memcached is still untouched");

done_testing;

# ---- Helpers ----

# The source tree as git sees it (tracked and untracked files, not the
# ignored build products), copied to $dest.
sub copy_source_tree {
    my ($dest) = @_;
    my $root = repo_root();
    mkdir $dest or die "mkdir $dest: $!";
    my $list = -d "$root/.git"
        ? "git -C '$root' ls-files -z -co --exclude-standard"
        : "cd '$root' && find . -type f -not -name '*.o' -print0";
    system("$list | (cd '$root' && xargs -0 tar cf -) | tar xf - -C '$dest'") == 0
        or die "copying the source tree failed";
}

sub run_in {
    my ($dir, @cmd) = @_;
    return run_cmd('sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', $dir, @cmd);
}

# Send $req on a fresh TCP connection, as a user would type it into telnet,
# and return the answer (read until it stops coming for 0.3 s).
sub telnet {
    my ($port, $req) = @_;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 2)
        or return '';
    print $s $req;
    my $sel = IO::Select->new($s);
    my $buf = '';
    while ($sel->can_read($buf =~ /(?:STORED|END|ERROR)\r\n\z/ ? 0.05 : 2)) {
        sysread($s, $buf, 65536, length $buf) or last;
    }
    return $buf;
}

sub tool_repl {
    my ($port) = @_;
    return (run_cmd('/usr/bin/memcachedrep-tool', '--timeout', '2', "127.0.0.1:$port",
                    'repl'))[0];
}

# A live process (not a zombie waiting for its parent to reap it).
sub running {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    return (split ' ', <$fh> // '')[2] ne 'Z';
}

sub md5_of {
    my ($file) = @_;
    open my $fh, '<', $file or return 'absent';
    binmode $fh;
    return Digest::MD5->new->addfile($fh)->hexdigest;
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return <$fh> // '';
}

sub write_file {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh or die "$file: $!";
}
