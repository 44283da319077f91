package E2E;

# Helpers for the end-to-end tests (t/pkg_*.t, t/e2e_*.t): what the
# memcachedrep package, its tool, PHP, keepalived and nutcracker do when
# run as users run them.  These tests run as root in CI; they install the
# Debian packages they need, build network namespaces, run daemons in them,
# and always clean up (cleanups run at exit, on a die, and on SIGINT/TERM).
# The POD at the end is the API.

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use File::Copy qw(copy);
use File::Path qw(remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use FindBin;
use IO::Socket::IP;
use POSIX ();
use Test::More;

use MemcachedTest qw(wait_until memcached_bin);

our @EXPORT = qw(
    require_root require_netns need_packages package_installed skip_if_sanitizer_build
    on_cleanup run_cmd run_ok repo_root tool_path
    netns_lab enter_netns spawn
    mc_client wait_listening
    secure_scripts_dir keepalived_conf start_keepalived vip_holder
);

# ---- Cleanup ----

my @cleanups;
my $owner = $$;

# Register code to run at exit, last registered first (so processes
# started in a namespace are killed before the namespace is deleted).
sub on_cleanup { push @cleanups, $_[0]; return }

sub run_cleanups {
    return unless $$ == $owner;
    while (my $c = pop @cleanups) {
        eval { $c->(); 1 } or print STDERR "# cleanup failed: $@";
    }
}

END {
    my $status = $?;
    run_cleanups();
    $? = $status;
}
$SIG{$_} = sub { print STDERR "# interrupted\n"; exit 1 } for qw(INT TERM HUP);

# ---- Prerequisites ----

sub require_root {
    plan skip_all => "needs root (it installs packages and runs services); run it as root"
        unless $> == 0;
}

sub require_netns {
    my $probe = "mcrprobe$$";
    my ($rc) = run_cmd('ip', 'netns', 'add', $probe);
    run_cmd('ip', 'netns', 'del', $probe) if $rc == 0;
    plan skip_all => "needs network namespaces ('ip netns add' failed here)" if $rc != 0;
}

sub package_installed {
    my ($pkg) = @_;
    my ($rc, $out) = run_cmd('dpkg-query', '-W', '-f=${Status}', $pkg);
    return $rc == 0 && $out =~ /install ok installed/;
}

# Install the Debian packages that are missing (apt-get update first only
# when the install fails without it).  Skips the test when they are missing
# and it cannot install them; fails it when apt-get fails.
sub need_packages {
    my @missing = grep { !package_installed($_) } @_;
    return unless @missing;
    plan skip_all => "needs the Debian packages @missing, and installing them needs root"
        unless $> == 0;
    local $ENV{DEBIAN_FRONTEND} = 'noninteractive';
    my @install = ('apt-get', '-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '-q',
                   '--no-install-recommends', @missing);
    my ($rc, $out) = run_cmd(@install);
    if ($rc != 0) {
        run_cmd('apt-get', '-o', 'DPkg::Lock::Timeout=300', 'update', '-q');
        ($rc, $out) = run_cmd(@install);
    }
    BAIL_OUT("apt-get install @missing failed:\n$out") if $rc != 0;
    note("installed @missing");
}

# The package tests build their own binary: run them once, with the plain
# build, not again when the suite runs against the sanitizer build.
sub skip_if_sanitizer_build {
    my $bin = memcached_bin();
    my $libs = qx{ldd "$bin" 2>/dev/null} // '';
    plan skip_all => "$bin is the sanitizer build; this test builds its own binary and ran "
                   . "with the plain build"
        if $libs =~ /libasan|libubsan/;
}

# ---- Commands ----

# Run a command (a list, no shell); returns (exit status, stdout+stderr).
sub run_cmd {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // croak "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec { $cmd[0] } @cmd or do { print "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# run_cmd as a test: passes when the exit status is 0; returns the output.
sub run_ok {
    my ($name, @cmd) = @_;
    my ($rc, $out) = run_cmd(@cmd);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($rc, 0, $name) or diag("@cmd\n$out");
    return $out;
}

sub repo_root { return File::Spec->rel2abs("$FindBin::Bin/..") }
sub tool_path { return repo_root() . '/scripts/memcachedrep-tool' }

# ---- Network namespaces ----

# A lab: a hub namespace holding a bridge (10.77.0.254/24) and, for each
# of $n nodes, a namespace whose eth0 (10.77.0.<i>/24) is a veth plugged
# into the bridge: machines on one LAN, isolated from the host's network.
# Tests enter the hub to act as the clients.  Returns {hub => name,
# nodes => [names], addr => [undef, '10.77.0.1', ...]}.
sub netns_lab {
    my ($n) = @_;
    my $tag = "mcr$$";
    my $lab = {hub => "$tag-hub", nodes => [], addr => [undef]};
    my $ip = sub {
        my ($rc, $out) = run_cmd('ip', @_);
        croak "ip @_: $out" if $rc != 0;
    };
    $ip->('netns', 'add', $lab->{hub});
    on_cleanup(sub { run_cmd('ip', 'netns', 'del', $lab->{hub}) });
    $ip->('-n', $lab->{hub}, 'link', 'set', 'lo', 'up');
    $ip->('-n', $lab->{hub}, 'link', 'add', 'br0', 'type', 'bridge');
    $ip->('-n', $lab->{hub}, 'addr', 'add', '10.77.0.254/24', 'dev', 'br0');
    $ip->('-n', $lab->{hub}, 'link', 'set', 'br0', 'up');
    for my $i (1 .. $n) {
        my $ns = "$tag-n$i";
        $ip->('netns', 'add', $ns);
        on_cleanup(sub { run_cmd('ip', 'netns', 'del', $ns) });
        $ip->('-n', $ns, 'link', 'set', 'lo', 'up');
        $ip->('link', 'add', "p$i", 'netns', $lab->{hub}, 'type', 'veth',
              'peer', 'name', 'eth0', 'netns', $ns);
        $ip->('-n', $lab->{hub}, 'link', 'set', "p$i", 'master', 'br0', 'up');
        $ip->('-n', $ns, 'addr', 'add', "10.77.0.$i/24", 'dev', 'eth0');
        $ip->('-n', $ns, 'link', 'set', 'eth0', 'up');
        push @{$lab->{nodes}}, $ns;
        push @{$lab->{addr}}, "10.77.0.$i";
    }
    return $lab;
}

# Move this process (and the children it starts from now on) into the
# network namespace $name: its sockets then live on the lab's LAN.
sub enter_netns {
    my ($name) = @_;
    require 'sys/syscall.ph';    ## no critic (RequireBarewordIncludes)
    open my $fh, '<', "/run/netns/$name" or croak "open /run/netns/$name: $!";
    my $CLONE_NEWNET = 0x40000000;
    syscall(SYS_setns(), fileno($fh), $CLONE_NEWNET) == 0 or croak "setns($name): $!";
    close $fh;
}

# ---- Processes ----

my $logdir;

# Start a command in the background, in namespace $o{ns} if given, with
# stdout and stderr in files; killed at cleanup.  Returns an E2E::Proc.
sub spawn {
    my (%o) = @_;
    $logdir //= tempdir('mcr-e2e.XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @cmd = @{$o{cmd}};
    unshift @cmd, 'ip', 'netns', 'exec', $o{ns} if $o{ns};
    my $name = $o{name} // $cmd[0];
    my $log = "$logdir/$name";
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$log.out";
        open STDERR, '>', "$log.err";
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $proc = bless {pid => $pid, name => $name, log => $log, cmd => \@cmd}, 'E2E::Proc';
    on_cleanup(sub { $proc->stop });
    return $proc;
}

# ---- A small memcached client (text protocol, timeouts, no croak on a
# network error: failover loops retry) ----

sub mc_client { return E2E::Client->new(@_) }

# Wait until host:port accepts connections.
sub wait_listening {
    my ($host, $port, $timeout) = @_;
    return wait_until(sub {
        my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port, Timeout => 1);
        return $s ? 1 : 0;
    }, $timeout // 10, 0.05);
}

# ---- keepalived ----

# A root-owned directory, not writable by anyone else, holding copies of
# memcachedrep-tool and keepalived/memcachedrep-check, laid out as in the
# source tree: keepalived's enable_script_security accepts the script, and
# its script_user (nobody) may run it.  Returns the check script's path.
sub secure_scripts_dir {
    my $dir = tempdir('mcr-e2e-scripts.XXXXXX', DIR => '/run', CLEANUP => 0);
    on_cleanup(sub { remove_tree($dir) });
    mkdir "$dir/keepalived" or croak "mkdir: $!";
    copy(tool_path(), "$dir/memcachedrep-tool") or croak "copy: $!";
    copy(repo_root() . '/scripts/keepalived/memcachedrep-check',
         "$dir/keepalived/memcachedrep-check") or croak "copy: $!";
    chmod 0755, $dir, "$dir/keepalived", "$dir/memcachedrep-tool",
        "$dir/keepalived/memcachedrep-check";
    return "$dir/keepalived/memcachedrep-check";
}

# The shipped scripts/keepalived/keepalived.conf with this node's values:
# each line the example tells users to edit must be found exactly once, so
# the test follows the example as it is.
sub keepalived_conf {
    my (%o) = @_;
    open my $fh, '<', repo_root() . '/scripts/keepalived/keepalived.conf' or croak "$!";
    local $/;
    my $conf = <$fh>;
    my @edits = (
        [qr/^(\s+)router_id memcachedrep_a\b/m, "router_id $o{router_id}"],
        [qr{^(\s+)script "/usr/libexec/memcachedrep/memcachedrep-check 127\.0\.0\.1:11211"}m,
         qq{script "$o{check} 127.0.0.1:$o{port}"}],
        [qr/^(\s+)virtual_router_id 61\b/m, "virtual_router_id $o{vrid}"],
        [qr/^(\s+)priority 150\b/m, "priority $o{priority}"],
        [qr{^(\s+)192\.168\.168\.60/24}m, "$o{vip}/24"],
    );
    for my $e (@edits) {
        my $n = () = $conf =~ /$e->[0]/g;
        croak "keepalived.conf: '$e->[0]' found $n times, not once" unless $n == 1;
        $conf =~ s/$e->[0]/$1$e->[1]/;
    }
    return $conf;
}

# Start keepalived (VRRP only, in the foreground) in namespace $ns with
# $conf; its files go to a temp dir.
sub start_keepalived {
    my ($ns, $conf) = @_;
    my $dir = tempdir('mcr-e2e-ka.XXXXXX', TMPDIR => 1, CLEANUP => 1);
    open my $fh, '>', "$dir/keepalived.conf" or croak "$!";
    print $fh $conf;
    close $fh;
    # keepalived runs its check as nobody, with our environment: prove's
    # PERL5LIB would point the tool's perl at the test tree, which nobody
    # may not be allowed to read (a clone in a 0700 directory), and perl
    # dies on an unreadable @INC entry.  A real keepalived has none.
    local $ENV{PERL5LIB};
    delete $ENV{PERL5LIB};
    return spawn(ns => $ns, name => "keepalived-$ns",
                 cmd => ['keepalived', '--dont-fork', '--log-console', '--log-detail',
                         '--no-syslog', '--vrrp', '-f', "$dir/keepalived.conf",
                         '-p', "$dir/keepalived.pid", '-r', "$dir/vrrp.pid",
                         '-c', "$dir/checkers.pid"]);
}

# Which of the lab's nodes holds address $vip (its index, or 0).
sub vip_holder {
    my ($lab, $vip) = @_;
    for my $i (1 .. @{$lab->{nodes}}) {
        my ($rc, $out) = run_cmd('ip', '-n', $lab->{nodes}[$i - 1], '-4', 'addr', 'show',
                                 'dev', 'eth0');
        return $i if $out =~ /inet \Q$vip\E\//;
    }
    return 0;
}

package E2E::Proc;

use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

sub pid { $_[0]{pid} }

sub alive {
    my ($self) = @_;
    return 0 if defined $self->{status};
    my $r = waitpid($self->{pid}, WNOHANG);
    return 1 if $r == 0;
    $self->{status} = $?;
    return 0;
}

sub signal { kill $_[1], $_[0]{pid} }

# SIGTERM, SIGKILL after $grace seconds; returns the wait status.
sub stop {
    my ($self, $grace) = @_;
    if ($self->alive) {
        kill 'TERM', $self->{pid};
        my $deadline = time + ($grace // 15);
        sleep 0.05 while $self->alive && time < $deadline;
        if ($self->alive) {
            kill 'KILL', $self->{pid};
            waitpid($self->{pid}, 0);
            $self->{status} = $?;
        }
    }
    return $self->{status};
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return <$fh> // '';
}

sub stderr_text { return _slurp("$_[0]{log}.err") }

# What it printed: stdout, then stderr.
sub output { return _slurp("$_[0]{log}.out") . _slurp("$_[0]{log}.err") }

# True when the process's stderr holds no sanitizer report.
sub sanitizer_clean {
    my ($self) = @_;
    my $err = $self->stderr_text;
    return !grep { index($err, $_) >= 0 }
        ('ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer');
}

package E2E::Client;

use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(time);

sub new {
    my ($class, $host, $port, $timeout) = @_;
    return bless {host => $host, port => $port, timeout => $timeout // 2}, $class;
}

sub _sock {
    my ($self) = @_;
    $self->{sock} //= IO::Socket::IP->new(PeerHost => $self->{host}, PeerPort => $self->{port},
                                          Timeout => $self->{timeout});
    return $self->{sock};
}

sub drop { delete $_[0]{sock}; return }

# Send $req and read until a line matching $end (all of it, lines joined);
# undef on any network error (the connection is dropped).
sub _talk {
    my ($self, $req, $end) = @_;
    my $s = $self->_sock or return;
    unless (defined syswrite($s, $req)) {
        return $self->drop;
    }
    my $buf = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + $self->{timeout};
    while ($buf !~ $end) {
        my $left = $deadline - time;
        return $self->drop if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        return $self->drop unless $n;
    }
    return $buf;
}

# "STORED" (or the server's answer), undef on a network error.
sub set {
    my ($self, $key, $value, $exptime) = @_;
    my $r = $self->_talk("set $key 0 " . ($exptime // 0) . ' ' . length($value)
                         . "\r\n$value\r\n", qr/\r\n\z/) // return;
    $r =~ s/\r\n\z//;
    return $r;
}

# {key => value} of the keys found; undef on a network error.
sub get_multi {
    my ($self, @keys) = @_;
    my $r = $self->_talk("get @keys\r\n", qr/(?:^|\r\n)END\r\n\z|^(?:SERVER_|CLIENT_)?ERROR/)
        // return;
    my %found;
    while ($r =~ /\GVALUE (\S+) \d+ (\d+)\r\n/gc) {
        my ($k, $len) = ($1, $2);
        $found{$k} = substr($r, pos($r), $len);
        pos($r) = pos($r) + $len + 2;
    }
    return \%found;
}

# The value; undef for a miss or a network error (get_multi tells them
# apart).
sub get {
    my ($self, $key) = @_;
    my $f = $self->get_multi($key) // return;
    return $f->{$key};
}

sub stats {
    my ($self) = @_;
    my $r = $self->_talk("stats\r\n", qr/END\r\n\z/) // return;
    return {$r =~ /^STAT (\S+) (.*?)\r$/mg};
}

1;

__END__

=head1 NAME

E2E - helpers of the end-to-end tests (package, PHP, keepalived, nutcracker)

=head1 SYNOPSIS

  use MemcachedTest;
  use E2E;

  require_root();
  require_netns();
  need_packages(qw(keepalived));
  my $lab = netns_lab(2);            # hub + 2 nodes on 10.77.0.0/24
  my $node = spawn(ns => $lab->{nodes}[0], name => 'a',
                   cmd => [memcached_bin(), '-u', 'root', '-x', '10.77.0.2']);
  enter_netns($lab->{hub});          # act as a client on the lab's LAN
  my $c = mc_client('10.77.0.1', 11211);
  is($c->set('foo', 'bar'), 'STORED');

=head1 PREREQUISITES

B<require_root>, B<require_netns> skip the whole test file, with the
reason, when the test cannot run here.  B<need_packages>(I<pkg>...)
installs the missing Debian packages with apt-get (skipping only when not
root); B<package_installed>(I<pkg>) tells whether one is.  B<skip_if_sanitizer_build> skips a test that builds its own binary
when the suite runs against the sanitizer build.

=head1 CLEANUP

B<on_cleanup>(I<code>) registers code run at exit (also after a die or
SIGINT/SIGTERM), last registered first.  Namespaces, spawned processes and
temp dirs are registered by the functions that create them.

=head1 COMMANDS AND PROCESSES

B<run_cmd>(I<cmd>...) returns (exit status, output); B<run_ok>(I<name>,
I<cmd>...) is the same as a test.  B<spawn>(cmd => [...], ns => I<netns>,
name => I<label>) starts a background process (an E2E::Proc: pid, alive,
signal, stop, stderr_text, sanitizer_clean).

=head1 NETWORK NAMESPACES

B<netns_lab>(I<n>) builds a hub namespace with a bridge and I<n> node
namespaces (eth0 = 10.77.0.I<i>/24). B<enter_netns>(I<name>) moves the test
process into a namespace.

=head1 CLIENT

B<mc_client>(I<host>, I<port>, I<timeout>) returns a client whose B<set>,
B<get>, B<get_multi> and B<stats> return undef on a network error (and
reconnect on the next call), so failover loops can simply retry.
B<wait_listening>(I<host>, I<port>, I<timeout>).

=head1 KEEPALIVED

B<secure_scripts_dir> copies the health check and the tool where keepalived
accepts to run them; B<keepalived_conf>(router_id, check, port, vrid,
priority, vip) edits the shipped example; B<start_keepalived>(I<ns>,
I<conf>); B<vip_holder>(I<lab>, I<vip>) tells which node holds an address.

=cut
