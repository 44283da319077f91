package ReplTest;

# Helpers for the replication tests: start a replicated pair on loopback
# the way users do (both nodes with the same -x 127.0.0.1 -X <port>), wait
# for link states, and compare a key on both nodes.  Everything polls up to
# a deadline; nothing sleeps a fixed time.

use strict;
use warnings;

use Exporter qw(import);
use Test::More;
use MemcachedTest;

our @EXPORT = qw(
    start_node start_pair repl_state wait_state wait_streaming
    wait_value wait_same gets_of kv_on peer_has_ttl_300
);

# Replication waits are longer than a single read: a reconnect goes through
# the dialer's backoff (up to 2 s) and a bulk sync.
our $DEADLINE = 20 * timeout_scale();

# Start one node replicating with 127.0.0.1:$rport.  %o: args (extra
# command-line arguments), port (client port to reuse after a restart).
sub start_node {
    my ($rport, %o) = @_;
    my $args = "-x 127.0.0.1 -X $rport " . ($o{args} || '');
    $args .= " -p $o{port}" if $o{port};
    return start_server($args);
}

# Two nodes sharing replication port $rport (a fresh one when not given);
# returns ($a, $b, $rport) once both links are streaming.
sub start_pair {
    my (%o) = @_;
    my $rport = $o{rport} || free_port();
    my $a = start_node($rport, %o);
    my $b = start_node($rport, %o);
    wait_streaming($a, $b);
    return ($a, $b, $rport);
}

sub repl_state {
    my ($srv) = @_;
    my $sock = eval { $srv->new_sock } or return '';
    my $st = stats($sock);
    return $st && $st->{repl_state} ? $st->{repl_state} : '';
}

sub wait_state {
    my ($srv, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = wait_until(sub { repl_state($srv) eq $want }, $DEADLINE, 0.05);
    ok($ok, $name || "node on port " . $srv->port . " reaches $want")
        or diag("state is '" . repl_state($srv) . "'\n" . $srv->stderr_text);
    return $ok;
}

sub wait_streaming {
    my @nodes = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    wait_state($_, 'streaming') for @nodes;
}

# [value, cas, flags] of $key on a node (undef when missing).
sub gets_of {
    my ($sock, $key) = @_;
    my @r = mem_gets($sock, $key);
    return @r ? [@r] : undef;
}

# The value of $key on $sock, or undef.
sub kv_on {
    my ($sock, $key) = @_;
    my $r = gets_of($sock, $key);
    return $r ? $r->[0] : undef;
}

# Poll until $key has $value on $sock (undef: until it is missing).
sub wait_value {
    my ($sock, $key, $value, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $last;
    my $ok = wait_until(sub {
        $last = kv_on($sock, $key);
        return defined $value ? (defined $last && $last eq $value) : !defined $last;
    }, $DEADLINE, 0.02);
    ok($ok, $name || "$key replicated") or
        diag("last seen: " . (defined $last ? "'$last'" : 'missing'));
    return $ok;
}

# Poll until $key has the same value, CAS and flags on both sockets.
sub wait_same {
    my ($sa, $sb, $key, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($x, $y);
    my $ok = wait_until(sub {
        $x = gets_of($sa, $key);
        $y = gets_of($sb, $key);
        return (!defined $x && !defined $y) ||
               (defined $x && defined $y && "@$x" eq "@$y");
    }, $DEADLINE, 0.02);
    ok($ok, $name || "$key identical on both nodes") or
        diag("A: " . ($x ? "@$x" : 'missing') . "  B: " . ($y ? "@$y" : 'missing'));
    return $ok;
}

# $key, stored with a TTL of 300 s, has that TTL on $sock (read with
# mg t).  Each node steps its seconds clock on its own tick, so a peer
# still in the previous second reports 301 for a moment.
sub peer_has_ttl_300 {
    my ($sock, $key, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    send_bytes($sock, "mg $key t\r\n");
    return like(read_line($sock), qr/^HD t(29\d|30[01])\r\n\z/, $name);
}

1;
