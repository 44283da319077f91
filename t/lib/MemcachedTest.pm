package MemcachedTest;

# The helper every test in t/ shares: start a server on free loopback ports,
# talk the text protocol to it with read timeouts, and check that it ends
# cleanly (no crash, no sanitizer report).  The POD at the end is the API.

use strict;
use warnings;

use Carp qw(croak);
use Errno qw(EINTR EAGAIN EWOULDBLOCK);
use Exporter qw(import);
use File::Spec;
use FindBin;
use IO::Select;
use IO::Socket::INET;
use Test2::API qw(test2_add_callback_testing_done);
use Test::More;
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    start_server memcached_bin flavor is_memcachedrep expected_version
    timeout_scale
    send_bytes read_line read_bytes read_available no_more_data
    cmd_is expect_is cmd_like cmd_clock_is
    mem_set mem_get_is mem_gets mem_get_multi meta_cas stats
    udp_request udp_response
    wait_until free_port
);

# Seconds a single read may wait for the server before the check fails.
# Sanitizer builds are several times slower, so MCTEST_TIMEOUT can raise it.
our $TIMEOUT = $ENV{MCTEST_TIMEOUT} || 5;

# Markers of a sanitizer report in the server's stderr.
my @SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer');

# Every server started by this test file that has not been checked yet,
# keyed by refaddr; weak references so a server may also be destroyed early.
my %live_servers;

# ---- Which binary, which flavour ----

# The binary under test: $MEMCACHED_BIN, else ./memcached at the repo top.
sub memcached_bin {
    return $ENV{MEMCACHED_BIN} if $ENV{MEMCACHED_BIN};
    return File::Spec->rel2abs("$FindBin::Bin/../memcached");
}

my $flavor_cache;

# 'memcachedrep' for our server, 'upstream' for a real memcached.  The
# deliberate differences (version string, -x/-X/-q, exit status of a bad
# option) are keyed on this.  MEMCACHED_FLAVOR overrides the probe, which
# looks for the replication options in the binary's -h text.
sub flavor {
    return $flavor_cache if defined $flavor_cache;
    if (my $f = $ENV{MEMCACHED_FLAVOR}) {
        croak "MEMCACHED_FLAVOR must be 'memcachedrep' or 'upstream'"
            unless $f eq 'memcachedrep' || $f eq 'upstream';
        return $flavor_cache = $f;
    }
    my $bin = memcached_bin();
    my $help = qx{"$bin" -h 2>&1};
    $flavor_cache = ($help =~ /memcachedrep|replicat/i) ? 'memcachedrep' : 'upstream';
    return $flavor_cache;
}

sub is_memcachedrep { return flavor() eq 'memcachedrep' }

# The version the server must announce ("version", "STAT version"):
# memcachedrep implements protocol level 1.6.45; an upstream server says
# what its -V says.
sub expected_version {
    return '1.6.45' if is_memcachedrep();
    my $bin = memcached_bin();
    my $v = qx{"$bin" -V 2>&1};
    return $v =~ /(\d+\.\d+\.\d+\S*)/ ? $1 : 'unknown';
}

# Factor to stretch timing-sensitive waits by (MCTEST_TIMEOUT / 5).
sub timeout_scale { return $TIMEOUT / 5 > 1 ? $TIMEOUT / 5 : 1 }

# ---- Ports and polling ----

# A loopback port that was free a moment ago (bind to port 0, read it back,
# release it).  The caller must cope with losing a race for it.
sub free_port {
    my ($proto) = @_;
    $proto ||= 'tcp';
    my $s = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Proto => $proto,
        ($proto eq 'tcp' ? (Listen => 1, ReuseAddr => 1) : ()),
    ) or croak "cannot bind a $proto port on 127.0.0.1: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# Poll $cond every $interval seconds until it returns true or $timeout
# seconds pass; returns the last value of $cond.  Tests use this instead of
# a fixed sleep whenever the state they wait for can be observed.
sub wait_until {
    my ($cond, $timeout, $interval) = @_;
    $timeout  = $TIMEOUT unless defined $timeout;
    $interval = 0.02 unless defined $interval;
    my $deadline = time + $timeout;
    while (1) {
        my $r = $cond->();
        return $r if $r || time >= $deadline;
        sleep $interval;
    }
}

# ---- Starting and stopping servers ----

# Start the binary under test; see the POD for the options.  Dies (failing
# the test file) if it cannot be started within the deadline.
sub start_server {
    my %opt = @_ % 2 ? (args => @_) : @_;
    my $args = defined $opt{args} ? $opt{args} : '';
    my @extra = split ' ', $args;
    my $tries = 5;
    for my $try (1 .. $tries) {
        my $srv = MemcachedTest::Server->_spawn(\%opt, \@extra);
        return $srv if $srv->_wait_ready;
        my $err = $srv->stderr_text;
        $srv->_reap_quietly;
        # Another process may have taken the port between free_port() and
        # the server's bind: take new ports and try again.
        next if $try < $tries && $err =~ /bind|address already in use/i;
        croak "server did not start (" . $srv->cmdline . "): $err";
    }
}

test2_add_callback_testing_done(sub {
    my @srv = grep { defined && $_->{owner} == $$ } values %live_servers;
    $_->terminate for @srv;
    $_->stop for sort { $a->{pid} <=> $b->{pid} } @srv;
});

END {
    my $status = $?;
    my $reported = 0;
    for my $srv (grep { defined } values %live_servers) {
        $reported ||= !$srv->_reap_quietly;
    }
    $? = $status || ($reported ? 1 : 0);
}

# ---- Reading and writing on a stream socket ----

sub _rbuf { my ($sock) = @_; return \${*$sock}{mctest_rbuf} }

# Write all of $data to $sock; returns false (after a diag) if the socket
# stays unwritable for the read timeout or the write fails.
sub send_bytes {
    my ($sock, $data) = @_;
    my $off = 0;
    my $sel = IO::Select->new($sock);
    while ($off < length $data) {
        unless ($sel->can_write($TIMEOUT)) {
            diag("write timed out after $off of " . length($data) . " bytes");
            return 0;
        }
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            diag("write failed: $!");
            return 0;
        }
        $off += $n;
    }
    return 1;
}

# Read more bytes into the socket's buffer, waiting up to $timeout seconds.
# Returns the number read, 0 when the peer closed (EOF or a reset), undef
# on timeout.
sub _fill {
    my ($sock, $timeout) = @_;
    my $buf = _rbuf($sock);
    $$buf = '' unless defined $$buf;
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($sock);
    while (1) {
        my $left = $deadline - time;
        return undef if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($sock, $$buf, 1 << 20, length $$buf);
        return $n if defined $n;
        return 0 unless $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
    }
}

# One line including its "\n"; undef if none arrives in time (or at EOF:
# then what was buffered is dropped and undef tells the caller).
sub read_line {
    my ($sock, $timeout) = @_;
    $timeout = $TIMEOUT unless defined $timeout;
    my $buf = _rbuf($sock);
    $$buf = '' unless defined $$buf;
    my $deadline = time + $timeout;
    while ((my $i = index($$buf, "\n")) < 0) {
        my $n = _fill($sock, $deadline - time);
        return undef unless $n;
    }
    my $i = index($$buf, "\n");
    return substr($$buf, 0, $i + 1, '');
}

# Exactly $len bytes, or undef if they do not all arrive in time.
sub read_bytes {
    my ($sock, $len, $timeout) = @_;
    $timeout = $TIMEOUT unless defined $timeout;
    my $buf = _rbuf($sock);
    $$buf = '' unless defined $$buf;
    my $deadline = time + $timeout;
    while (length $$buf < $len) {
        my $n = _fill($sock, $deadline - time);
        return undef unless $n;
    }
    return substr($$buf, 0, $len, '');
}

# Whatever arrives within $wait seconds (default 0.2): for checking what a
# server sends before closing, or that it sends nothing.  Returns the bytes
# and, in list context, whether the peer closed the connection.
sub read_available {
    my ($sock, $wait) = @_;
    $wait = 0.2 unless defined $wait;
    my $buf = _rbuf($sock);
    $$buf = '' unless defined $$buf;
    my $deadline = time + $wait;
    my $eof = 0;
    while (time < $deadline) {
        my $n = _fill($sock, $deadline - time);
        last unless defined $n;
        if ($n == 0) { $eof = 1; last }
    }
    my $got = $$buf;
    $$buf = '';
    return wantarray ? ($got, $eof) : $got;
}

# Check that the server sent nothing more within $wait seconds.
sub no_more_data {
    my ($sock, $name, $wait) = @_;
    my $got = read_available($sock, defined $wait ? $wait : 0.1);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return is($got, '', $name || 'no unexpected data from the server');
}

# Read the answer to compare with $expect: line by line until as many bytes
# as expected arrived, or what arrived already differs from the expectation
# (so a wrong answer fails at once, a missing one after the timeout).
sub _read_expected {
    my ($sock, $expect) = @_;
    my $got = '';
    while (length $got < length $expect) {
        my $line = read_line($sock);
        if (!defined $line) {
            # A partial answer without "\n": take what is buffered.
            $got .= ${_rbuf($sock)} if defined ${_rbuf($sock)};
            ${_rbuf($sock)} = '';
            last;
        }
        $got .= $line;
        last if $got ne substr($expect, 0, length $got);
    }
    return $got;
}

# Read an answer and compare it exactly with $expect.  On a mismatch the
# rest of the wrong answer is drained and shown, so that the following
# checks start in step with the server again.
sub expect_is {
    my ($sock, $expect, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $got = _read_expected($sock, $expect);
    if (length($expect) > 2000 || length($got) > 2000) {
        # Too big to print whole: say where the answers part.
        return 1 if ok($got eq $expect, $name);
        my $i = 0;
        $i++ while $i < length($got) && substr($got, $i, 1) eq substr($expect, $i, 1);
        diag(sprintf("got %d bytes, expected %d; they differ from byte %d:\n"
                     . "   got: %s\nwanted: %s", length $got, length $expect, $i,
                     _printable(substr($got, $i, 80)), _printable(substr($expect, $i, 80))));
    } else {
        return 1 if is($got, $expect, $name);
    }
    my $rest = read_available($sock, 0.2);
    diag("the server also sent: " . _printable($rest)) if length $rest;
    return 0;
}

sub _printable {
    my ($s) = @_;
    $s = substr($s, 0, 500) . '...' if length $s > 500;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $s;
}

# Send $send, read the answer and compare it exactly with $expect.
sub cmd_is {
    my ($sock, $send, $expect, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $name = _name_from($send) unless defined $name;
    send_bytes($sock, $send) or return fail("$name: could not send");
    return expect_is($sock, $expect, $name);
}

# Send $send and match the first answer line against $re.
sub cmd_like {
    my ($sock, $send, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $name = _name_from($send) unless defined $name;
    send_bytes($sock, $send) or return fail("$name: could not send");
    my $line = read_line($sock);
    return like(defined $line ? $line : '<no answer>', $re, $name);
}

# Send $send and check the answer against $expect, in which one "%d"
# stands for a number of seconds counted on the server's clock: a TTL left
# (ttl => N) or the seconds since an access (age => N).  N is what the
# answer holds if the clock did not move since $o{since}, a time() taken
# before sending the command that set the TTL or made the access.  The
# server's clock steps once a second, whenever that falls, so a check made
# right after can see it moved by one (or more if the machine was slow):
# every value the clock may have reached since then is accepted.
sub cmd_clock_is {
    my ($sock, $send, $expect, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $name = defined $o{name} ? $o{name} : _name_from($send);
    my ($n, $dir) = exists $o{ttl} ? ($o{ttl}, -1) : ($o{age}, 1);
    croak 'cmd_clock_is needs ttl or age, and since' unless defined $n && defined $o{since};
    send_bytes($sock, $send) or return fail("$name: could not send");
    my $got = '';
    for (1 .. ($expect =~ tr/\n//)) {
        my $line = read_line($sock);
        last unless defined $line;
        $got .= $line;
    }
    # Second boundaries the server's clock may have crossed since $since
    # (its reading lags the wall clock by up to a tick of 100 ms).
    my $steps = 1 + int(time - $o{since} + 0.25);
    my @ok = map { sprintf($expect, $n + $dir * $_) } 0 .. $steps;
    return pass($name) if grep { $_ eq $got } @ok;
    is($got, $ok[0], $name);
    diag('(or the same with the clock moved by up to ' . $steps . ' s)');
    my $rest = read_available($sock, 0.2);
    diag("the server also sent: " . _printable($rest)) if length $rest;
    return 0;
}

sub _name_from {
    my ($send) = @_;
    my $n = $send;
    $n =~ s/\r\n.*//s;
    $n = substr($n, 0, 60) . '...' if length $n > 60;
    return $n;
}

# ---- Protocol-level helpers ----

# set (or another storage $cmd) and return the answer line without "\r\n".
sub mem_set {
    my ($sock, $key, $val, %o) = @_;
    my $cmd = $o{cmd} || 'set';
    my $flags = $o{flags} || 0;
    my $exp = $o{exptime} || 0;
    my $cas = defined $o{cas} ? " $o{cas}" : '';
    send_bytes($sock, "$cmd $key $flags $exp " . length($val) . "$cas\r\n$val\r\n")
        or return undef;
    my $line = read_line($sock);
    $line =~ s/\r\n\z// if defined $line;
    return $line;
}

# get $key and check the value (undef: the key must be missing) and, when
# given, the flags.
sub mem_get_is {
    my ($sock, $key, $val, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $name = $o{name} || "get $key";
    my $expect = 'END' . "\r\n";
    if (defined $val) {
        my $flags = $o{flags} || 0;
        $expect = "VALUE $key $flags " . length($val) . "\r\n$val\r\nEND\r\n";
    }
    return cmd_is($sock, "get $key\r\n", $expect, $name);
}

# gets $key: returns ($value, $cas, $flags), or () if missing.
sub mem_gets {
    my ($sock, $key) = @_;
    my $h = mem_get_multi($sock, [$key], 'gets');
    return () unless $h && $h->{$key};
    return @{ $h->{$key} }{qw(value cas flags)};
}

# One get/gets (or gat/gats with $cmd = "gat 100") for all keys in @$keys;
# returns { key => { value, flags, cas } } for the hits, or undef if the
# answer was malformed or incomplete.
sub mem_get_multi {
    my ($sock, $keys, $cmd) = @_;
    $cmd ||= 'get';
    send_bytes($sock, "$cmd @$keys\r\n") or return undef;
    my %res;
    while (1) {
        my $line = read_line($sock);
        return undef unless defined $line;
        last if $line eq "END\r\n";
        my ($k, $flags, $len, $cas) =
            $line =~ /^VALUE (\S+) (\d+) (\d+)(?: (\d+))?\r\n\z/ or do {
                diag("unexpected line in get answer: $line");
                return undef;
            };
        my $data = read_bytes($sock, $len + 2);
        return undef unless defined $data && substr($data, -2, 2, '') eq "\r\n";
        $res{$k} = { value => $data, flags => $flags, cas => $cas };
    }
    return \%res;
}

# The CAS of $key through the meta protocol ("mg <key> c u": no LRU
# bump), or undef when the key is missing.
sub meta_cas {
    my ($sock, $key) = @_;
    send_bytes($sock, "mg $key c u\r\n") or return undef;
    my $line = read_line($sock) // '';
    return $line =~ /^HD c(\d+)/ ? $1 : undef;
}

# "stats" or "stats $group": returns { name => value }.  Lines that are
# not "STAT name value" (as in "stats detail dump") are kept in order under
# the key '' as an array.
sub stats {
    my ($sock, $group) = @_;
    my $cmd = defined $group && length $group ? "stats $group" : 'stats';
    send_bytes($sock, "$cmd\r\n") or return undef;
    my %st;
    while (1) {
        my $line = read_line($sock);
        return undef unless defined $line;
        last if $line eq "END\r\n";
        if ($line =~ /^STAT (\S+) (.*)\r\n\z/) {
            $st{$1} = $2;
        } else {
            push @{ $st{''} }, $line;
        }
    }
    return \%st;
}

# ---- UDP ----

# Send $payload over UDP with the 8-byte frame header (request id, sequence
# 0, 1 datagram, reserved 0).
sub udp_request {
    my ($sock, $reqid, $payload) = @_;
    my $dgram = pack('nnnn', $reqid, 0, 1, 0) . $payload;
    return defined send($sock, $dgram, 0);
}

# Collect the datagrams answering request $reqid and return the payload:
# the datagrams of a message in sequence order, messages in arrival order.
# memcached 1.6 sends each part of an answer (each VALUE, the END) as its
# own message with the same request id, so with $until (a regex) messages
# are gathered until the payload matches it; without, one message is
# returned.  undef if the answer is incomplete in time.  Datagrams of other
# requests are ignored.  In list context also returns the datagram count.
sub udp_response {
    my ($sock, $reqid, $timeout, $until) = @_;
    $timeout = $TIMEOUT unless defined $timeout;
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($sock);
    my ($payload, $count, %parts, $total) = ('', 0);
    while (1) {
        my $left = $deadline - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $dgram;
        defined recv($sock, $dgram, 65536, 0) or return undef;
        next if length $dgram < 8;
        my ($id, $seq, $n) = unpack('nnn', $dgram);
        next unless $id == $reqid;
        $count++;
        $total = $n;
        $parts{$seq} = substr($dgram, 8);
        next if keys %parts < $total;
        $payload .= join '', map { $parts{$_} } sort { $a <=> $b } keys %parts;
        %parts = ();
        last if !$until || $payload =~ $until;
    }
    return wantarray ? ($payload, $count) : $payload;
}

package MemcachedTest::Server;

use strict;
use warnings;
use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::IP;
use IO::Socket::UNIX;
use POSIX qw(:sys_wait_h);
use Scalar::Util qw(refaddr weaken);
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(time sleep);

# Fork and exec the binary with the ports and paths chosen here plus the
# caller's arguments; stdout and stderr go to files in a temp dir.
sub _spawn {
    my ($class, $opt, $extra) = @_;
    my $self = bless {
        dir     => tempdir('mctest.XXXXXX', TMPDIR => 1, CLEANUP => 1),
        extra   => [@$extra],
        host    => '127.0.0.1',
        owner   => $$,
    }, $class;
    my @args;
    my %given = map { $_ => 1 } grep { /^-/ } @$extra;
    my $has = sub { my @o = @_; return grep { $given{$_} } @o };
    my $has_long = sub {
        my ($long) = @_;
        return grep { /^--\Q$long\E(=|\z)/ } @$extra;
    };

    if ($opt->{unix_socket}) {
        $self->{socket_path} = "$self->{dir}/mc.sock";
        push @args, '-s', $self->{socket_path};
    } elsif (my $path = _value_of($extra, '-s', '--unix-socket')) {
        $self->{socket_path} = $path;
    }
    if (!$self->{socket_path} && !$has->('-p') && !$has_long->('port')) {
        $self->{port} = MemcachedTest::free_port('tcp');
        push @args, '-p', $self->{port};
    } elsif (!$self->{socket_path}) {
        $self->{port} = _value_of($extra, '-p', '--port');
    }
    if ($opt->{udp}) {
        $self->{udp_port} = MemcachedTest::free_port('udp');
        push @args, '-U', $self->{udp_port};
    } elsif (!$has->('-U') && !$has_long->('udp-port')) {
        push @args, '-U', 0;
    }
    if (!$self->{socket_path} && !$has->('-l') && !$has_long->('listen')) {
        push @args, '-l', '127.0.0.1';
    } elsif (my $l = _value_of($extra, '-l', '--listen')) {
        # Connect to the first listener named ("host", "host:port",
        # "[v6]:port" or a bare v6 address).
        my $first = (split /,/, $l)[0];
        my ($h, $p);
        if ($first =~ /^\[([^\]]+)\](?::(\d+))?$/) {
            ($h, $p) = ($1, $2);
        } elsif ($first =~ /:.*:/) {
            $h = $first;
        } else {
            ($h, $p) = split /:/, $first, 2;
        }
        $self->{host} = $h;
        $self->{port} = $p if defined $p;
    }
    if ($> == 0 && !$has->('-u') && !$has_long->('user')) {
        push @args, '-u', 'root';
    }
    $self->{cmd} = [MemcachedTest::memcached_bin(), @args, @$extra];

    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', "$self->{dir}/stdout";
        open STDERR, '>', "$self->{dir}/stderr";
        { no warnings 'exec'; exec { $self->{cmd}[0] } @{ $self->{cmd} }; }
        print STDERR "exec $self->{cmd}[0]: $!\n";
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $live_servers{ refaddr $self } = $self;
    weaken $live_servers{ refaddr $self };
    return $self;
}

sub _value_of {
    my ($extra, $short, $long) = @_;
    for my $i (0 .. $#$extra) {
        return $extra->[$i + 1] if $extra->[$i] eq $short;
        return $1 if $extra->[$i] =~ /^\Q$long\E=(.*)/;
    }
    return undef;
}

# Wait until the server accepts a connection (TCP, UNIX socket, or a UDP
# "version" when it has neither).  False if it exited or the deadline
# (10 s, or MCTEST_TIMEOUT * 2 if larger) passed.
sub _wait_ready {
    my ($self) = @_;
    my $limit = $MemcachedTest::TIMEOUT * 2 > 10 ? $MemcachedTest::TIMEOUT * 2 : 10;
    return MemcachedTest::wait_until(sub {
        return 0 unless $self->alive;
        if ($self->{socket_path} || $self->{port}) {
            my $s = $self->_connect;
            return $s ? 1 : 0;
        }
        if ($self->{udp_port}) {
            my $u = $self->new_udp_sock or return 0;
            MemcachedTest::udp_request($u, 1, "version\r\n");
            return defined MemcachedTest::udp_response($u, 1, 0.1) ? 1 : 0;
        }
        return 1;
    }, $limit, 0.02);
}

sub _connect {
    my ($self) = @_;
    return IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $self->{socket_path})
        if $self->{socket_path};
    return IO::Socket::IP->new(PeerHost => $self->{host}, PeerPort => $self->{port},
                               Proto => 'tcp');
}

sub port        { return $_[0]{port} }
sub udp_port    { return $_[0]{udp_port} }
sub socket_path { return $_[0]{socket_path} }
sub pid         { return $_[0]{pid} }
sub host        { return $_[0]{host} }
sub dir         { return $_[0]{dir} }
sub cmdline     { return join ' ', @{ $_[0]{cmd} } }

# A new connection to the server (TCP, or the UNIX socket with -s); dies if
# the server refuses it.
sub new_sock {
    my ($self) = @_;
    my $s = $self->_connect
        or croak "cannot connect to " . ($self->{socket_path} || "$self->{host}:$self->{port}") . ": $!";
    return $s;
}

# A UDP socket connected to the server's UDP port.
sub new_udp_sock {
    my ($self) = @_;
    return IO::Socket::IP->new(PeerHost => $self->{host}, PeerPort => $self->{udp_port},
                               Proto => 'udp');
}

sub signal {
    my ($self, $sig) = @_;
    return kill $sig, $self->{pid};
}

# Has the process not exited yet?  Records its wait status when it has.
sub alive {
    my ($self) = @_;
    return 0 if defined $self->{status};
    my $r = waitpid($self->{pid}, WNOHANG);
    return 1 if $r == 0;
    $self->{status} = $r == $self->{pid} ? $? : -1;
    return 0;
}

# Wait up to $timeout seconds for the server to exit by itself (after a
# "shutdown" for instance); returns its wait status, or undef if it is
# still running.  An exit awaited this way is not a failure.
sub wait_exit {
    my ($self, $timeout) = @_;
    $self->{expect_exit} = 1;
    MemcachedTest::wait_until(sub { !$self->alive }, $timeout);
    return $self->{status};
}

sub stderr_text {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/stderr" or return '';
    local $/;
    my $t = <$fh>;
    return defined $t ? $t : '';
}

# Stop the server (SIGTERM, then SIGKILL after the deadline) and check, as
# one test, how it ended: it must not have exited on its own before (unless
# wait_exit() expected it), must not have died of a crash signal, and its
# stderr must hold no sanitizer report.  Returns the wait status.
# Idempotent.
sub stop {
    my ($self) = @_;
    return $self->{status} if $self->{checked};
    $self->{checked} = 1;
    delete $live_servers{ refaddr $self };
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $self->terminate;
    my @problems;
    push @problems, 'exited before the test ended' if $self->{died_early};
    my $limit = $MemcachedTest::TIMEOUT * 2 > 10 ? $MemcachedTest::TIMEOUT * 2 : 10;
    unless (MemcachedTest::wait_until(sub { !$self->alive }, $limit)) {
        kill 'KILL', $self->{pid};
        waitpid($self->{pid}, 0);
        $self->{status} = $?;
        push @problems, "still running ${limit}s after SIGTERM";
    }
    my $st = $self->{status};
    my $sig = $st & 127;
    push @problems, "died of signal $sig"
        if $sig && $sig != POSIX::SIGTERM() && $sig != POSIX::SIGKILL();
    my $err = $self->stderr_text;
    push @problems, 'printed a sanitizer report'
        if grep { index($err, $_) >= 0 } @SANITIZER_MARKERS;
    ok(!@problems, "server $self->{pid} ended cleanly")
        or diag(join('; ', @problems) . " (wait status $st)\nserver stderr:\n$err");
    return $st;
}

# Send SIGTERM if the server still runs, without waiting: lets several
# servers shut down in parallel before stop() checks each.
sub terminate {
    my ($self) = @_;
    return if $self->{terminating}++;
    if ($self->alive) {
        kill 'TERM', $self->{pid};
    } else {
        $self->{died_early} = !$self->{expect_exit};
    }
}

# End of a test that died before stop(), or a failed start: kill without
# adding tests.  Returns false if the server's stderr holds a sanitizer
# report (printed as a comment).
sub _reap_quietly {
    my ($self) = @_;
    delete $live_servers{ refaddr $self };
    $self->{checked} = 1;
    return 1 if $self->{owner} != $$;
    if ($self->alive) {
        kill 'TERM', $self->{pid};
        MemcachedTest::wait_until(sub { !$self->alive }, 5);
        if ($self->alive) {
            kill 'KILL', $self->{pid};
            waitpid($self->{pid}, 0);
        }
    }
    my $err = $self->stderr_text;
    return 1 unless grep { index($err, $_) >= 0 } @SANITIZER_MARKERS;
    print STDERR "# server stderr holds a sanitizer report:\n$err";
    return 0;
}

sub DESTROY {
    my ($self) = @_;
    return if $self->{checked} || !$self->{pid} || $self->{owner} != $$;
    $self->stop;
}

1;

__END__

=head1 NAME

MemcachedTest - start the server under test and speak its text protocol

=head1 SYNOPSIS

    use strict; use warnings;
    use Test::More;
    use MemcachedTest;

    my $srv  = start_server('-m 64 -c 100');      # or start_server(args => ..., udp => 1)
    my $sock = $srv->new_sock;

    cmd_is($sock, "set foo 0 0 3\r\nbar\r\n", "STORED\r\n");
    mem_get_is($sock, 'foo', 'bar');
    my $st = stats($sock);
    is($st->{curr_items}, 1);

    done_testing;    # stops every server and checks how each one ended

=head1 THE BINARY

C<$ENV{MEMCACHED_BIN}> names the binary; the default is F<memcached> at the
top of the repository (the parent of F<t/>).  The suite passes against the
real memcached too (C<MEMCACHED_BIN=/usr/bin/memcached prove -I t/lib t/>),
except where memcachedrep differs on purpose; those checks branch on:

=over

=item flavor(), is_memcachedrep()

C<'memcachedrep'> or C<'upstream'>.  C<$ENV{MEMCACHED_FLAVOR}> sets it;
otherwise the binary's C<-h> text is probed for replication options.

=item expected_version()

What C<version> must answer: C<1.6.45> for memcachedrep, the C<-V> version
for an upstream binary.

=back

=head1 SERVERS

=over

=item start_server($args) / start_server(args => $args, udp => 1, unix_socket => 1)

Starts the binary and waits (polling, 10 s at most) until it answers.
C<$args> is a string of extra command-line arguments.  Unless they say
otherwise the helper adds C<-p> with a free loopback port, C<-U 0> (or
C<-U> with a free port when C<udp> is set), C<-l 127.0.0.1>, and C<-u root>
when running as root.  With C<unix_socket> it adds C<-s> with a socket in a
temporary directory instead of a TCP port.  A start that fails because the
port was taken in the meantime is retried with new ports.  The server's
stdout and stderr go to files in C<< $srv->dir >>.

=item $srv->port, udp_port, socket_path, host, pid, dir, cmdline

=item $srv->new_sock

A new blocking connection (TCP to C<host:port>, or the UNIX socket).

=item $srv->new_udp_sock

A UDP socket connected to the server's UDP port.

=item $srv->signal($sig)

C<kill $sig> to the server.

=item $srv->alive

True while the process has not exited.

=item $srv->wait_exit($timeout)

For tests that make the server exit (C<shutdown>): waits for the exit and
returns the wait status (undef if it is still running); such an exit does
not count as a failure.

=item $srv->stop

SIGTERM (SIGKILL after the deadline) and three checks: the server had not
exited on its own, did not die of a crash signal, and its stderr has no
sanitizer report (C<ERROR: AddressSanitizer>, C<runtime error:>,
C<LeakSanitizer>).  C<done_testing> calls it for every server still
running, so a test rarely needs to; a test that dies kills its servers in
an END block.

=item $srv->stderr_text

What the server printed on stderr so far.

=back

=head1 SOCKET I/O

Every read waits at most C<$MemcachedTest::TIMEOUT> seconds
(C<$ENV{MCTEST_TIMEOUT}>, default 5), so a missing answer fails instead of
hanging.  Reads go through a buffer kept on the socket: do not mix them
with C<< <$sock> >> or C<sysread>.

=over

=item send_bytes($sock, $bytes)

Writes everything; false on error or timeout.

=item read_line($sock [, $timeout])

One line including C<\r\n>, or undef.

=item read_bytes($sock, $len [, $timeout])

Exactly C<$len> bytes, or undef.

=item read_available($sock [, $wait])

Whatever arrives within C<$wait> seconds (default 0.2); in list context
also whether the server closed the connection.

=item no_more_data($sock [, $name, $wait])

A test that nothing more arrives.

=back

=head1 ASSERTIONS

=over

=item cmd_is($sock, $send, $expect [, $name])

Sends C<$send>, reads the answer and checks it is exactly C<$expect>
(several lines and data blocks may be given at once).  Reading stops as
soon as the answer departs from C<$expect>, so a wrong answer fails at once
and a missing one after the timeout.

=item cmd_clock_is($sock, $send, $expect, ttl => N | age => N, since => T [, name => $name])

Like C<cmd_is> for an answer holding a number of seconds counted on the
server's clock (C<t> or C<l> of C<mg>, C<t> of C<ma>), written C<%d> in
C<$expect>: C<N> is its value if the clock has not moved since time C<T>
(a C<time()> taken before sending the command that set the TTL or made the
access); a TTL may have counted down, an age up, by as many seconds as may
have passed since C<T>.  The clock steps at whole seconds, so an exact
check would fail whenever one falls between the two commands.

=item expect_is($sock, $expect [, $name])

The same without sending (pipelined answers).

=item cmd_like($sock, $send, $regex [, $name])

Sends and matches the first answer line.

=item mem_set($sock, $key, $value, flags => F, exptime => E, cmd => 'add', cas => C)

Sends a storage command and returns its answer line without C<\r\n>.

=item mem_get_is($sock, $key, $value, flags => F, name => N)

C<get $key> must answer that value (and flags), or C<END> alone when
C<$value> is undef.

=item mem_gets($sock, $key)

Returns C<($value, $cas, $flags)>, or an empty list if the key is missing.

=item mem_get_multi($sock, \@keys [, $cmd])

One C<get> (or C<$cmd>: C<gets>, C<gat 10>, ...) for all the keys; returns
C<< { key => { value, flags, cas } } >> for the hits, undef on a malformed
or incomplete answer.

=item meta_cas($sock, $key)

The key's CAS through C<mg $key c u> (no LRU bump), or undef if missing.

=item stats($sock [, $group])

C<stats> or C<stats $group> as a hash of C<STAT name value>; other lines go,
in order, into C<< $h->{''} >> (an array).

=back

=head1 UDP

=over

=item udp_request($usock, $reqid, $payload)

Sends one request with the 8-byte frame header.

=item udp_response($usock, $reqid [, $timeout, $until])

Gathers the datagrams answering C<$reqid> and returns the payload in
sequence order (and, in list context, the datagram count); undef if
incomplete.  memcached 1.6 answers a multi-key get with one message per
VALUE and one for END, all under the same request id: with C<$until> (a
regex such as C<qr/END\r\n\z/>) messages are gathered until the payload
matches it.

=back

=head1 WAITING

=over

=item wait_until(sub { ... } [, $timeout, $interval])

Polls the condition (every 20 ms by default) until it is true or the
timeout (default C<$MemcachedTest::TIMEOUT>) passes; returns its last
value.  Use it instead of sleeping whenever the state can be observed.

=item timeout_scale()

C<MCTEST_TIMEOUT / 5> (at least 1), for stretching timing-sensitive
margins under sanitizers.

=item free_port([$proto])

A loopback port that was free a moment ago.

=back

=cut
