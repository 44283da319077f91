package BinProto;

# The binary protocol for the tests (memcached-protocol-binary.txt): build
# request packets, read answer packets with MemcachedTest's timed reads, and
# compare answers field by field.  The POD at the end is the API.

use strict;
use warnings;

use Exporter qw(import);
use Test::More;
use MemcachedTest;

our @EXPORT = qw(
    %OP %ST
    bin_req bin_read bin_cmd bin_is bin_closed
    bin_set bin_get bin_incr ext_store ext_incr ext_exp
    res_pkt
);

# Opcodes.
our %OP = (
    get => 0x00, set => 0x01, add => 0x02, replace => 0x03, delete => 0x04,
    incr => 0x05, decr => 0x06, quit => 0x07, flush => 0x08, getq => 0x09,
    noop => 0x0a, version => 0x0b, getk => 0x0c, getkq => 0x0d,
    append => 0x0e, prepend => 0x0f, stat => 0x10, setq => 0x11,
    addq => 0x12, replaceq => 0x13, deleteq => 0x14, incrq => 0x15,
    decrq => 0x16, quitq => 0x17, flushq => 0x18, appendq => 0x19,
    prependq => 0x1a, verbosity => 0x1b, touch => 0x1c, gat => 0x1d,
    gatq => 0x1e, sasl_list => 0x20, sasl_auth => 0x21, sasl_step => 0x22,
    gatk => 0x23, gatkq => 0x24,
);

# Status codes.
our %ST = (
    ok => 0x00, enoent => 0x01, eexists => 0x02, e2big => 0x03,
    einval => 0x04, not_stored => 0x05, delta_badval => 0x06,
    auth_error => 0x20, unknown => 0x81, enomem => 0x82,
);

# The message memcached puts in the value of each failure.
my %MESSAGE = (
    0x01 => 'Not found', 0x02 => 'Data exists for key.', 0x03 => 'Too large.',
    0x04 => 'Invalid arguments', 0x05 => 'Not stored.',
    0x06 => 'Non-numeric server-side value for incr or decr',
    0x20 => 'Auth failure.', 0x81 => 'Unknown command', 0x82 => 'Out of memory',
);

# Extras of set/add/replace, incr/decr, and touch/gat/flush.
sub ext_store { my ($flags, $exp) = @_; return pack('NN', $flags || 0, $exp || 0) }
sub ext_incr  { my ($delta, $init, $exp) = @_; return pack('Q>Q>N', $delta, $init || 0, $exp || 0) }
sub ext_exp   { my ($exp) = @_; return pack('N', $exp) }

# A request packet.  %o: key, extras, value, cas, opaque, and raw header
# overrides magic, keylen, extlen, bodylen, datatype.
sub bin_req {
    my ($op, %o) = @_;
    my $key = defined $o{key} ? $o{key} : '';
    my $ext = defined $o{extras} ? $o{extras} : '';
    my $val = defined $o{value} ? $o{value} : '';
    my $opcode = $op =~ /^\d+$/ ? $op : $OP{$op};
    die "unknown opcode $op" unless defined $opcode;
    return pack('CCnCCnNNQ>',
                defined $o{magic} ? $o{magic} : 0x80, $opcode,
                defined $o{keylen} ? $o{keylen} : length $key,
                defined $o{extlen} ? $o{extlen} : length $ext,
                $o{datatype} || 0, 0,
                defined $o{bodylen} ? $o{bodylen} : length($ext) + length($key) + length($val),
                $o{opaque} || 0, $o{cas} || 0) . $ext . $key . $val;
}

# One answer packet as a hash (magic opcode keylen extlen datatype status
# bodylen opaque cas extras key value), or undef if it does not arrive.
sub bin_read {
    my ($sock, $timeout) = @_;
    my $h = read_bytes($sock, 24, $timeout);
    return undef unless defined $h;
    my %r;
    @r{qw(magic opcode keylen extlen datatype status bodylen opaque cas)} =
        unpack('CCnCCnNNQ>', $h);
    my $body = $r{bodylen} ? read_bytes($sock, $r{bodylen}, $timeout) : '';
    return undef unless defined $body;
    $r{extras} = substr($body, 0, $r{extlen});
    $r{key} = substr($body, $r{extlen}, $r{keylen});
    $r{value} = substr($body, $r{extlen} + $r{keylen});
    return \%r;
}

# Send a request and return the first answer packet.
sub bin_cmd {
    my ($sock, $pkt) = @_;
    send_bytes($sock, $pkt) or return undef;
    return bin_read($sock);
}

# The answer expected to a request: opcode (name or number), status
# (name), and the fields that must match.  A failure's value defaults to
# memcached's message; cas => 'any' accepts any non-zero CAS.
sub res_pkt {
    my ($op, $status, %f) = @_;
    my $st = $ST{$status};
    die "unknown status $status" unless defined $st;
    my %r = (
        magic => 0x81, opcode => ($op =~ /^\d+$/ ? $op : $OP{$op}), status => $st,
        datatype => 0, opaque => $f{opaque} || 0,
        extras => defined $f{extras} ? $f{extras} : '',
        key => defined $f{key} ? $f{key} : '',
        value => defined $f{value} ? $f{value} : ($st && !defined $f{key} ? $MESSAGE{$st} : ''),
        cas => defined $f{cas} ? $f{cas} : 0,
    );
    return \%r;
}

sub _show {
    my ($r) = @_;
    return 'nothing' unless $r;
    my $v = $r->{value};
    $v = substr($v, 0, 60) . '...' if length $v > 60;
    $v =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    my $k = $r->{key};
    $k =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return sprintf('magic %02x op %02x status %02x opaque %u cas %s extras %s key "%s" value "%s"',
                   $r->{magic}, $r->{opcode}, $r->{status}, $r->{opaque}, $r->{cas},
                   unpack('H*', $r->{extras}), $k, $v);
}

# Check one answer packet $got (from bin_read) against res_pkt() $want.
sub _matches {
    my ($got, $want) = @_;
    return 0 unless $got;
    for my $f (qw(magic opcode status datatype opaque extras key value)) {
        return 0 unless $got->{$f} eq $want->{$f};
    }
    return 0 unless $got->{keylen} == length $got->{key} && $got->{extlen} == length $got->{extras};
    return $want->{cas} eq 'any' ? $got->{cas} != 0 : $got->{cas} == $want->{cas};
}

# Send $pkt (may be '' to only read) and check the answers that follow,
# one res_pkt() each, in order.  Returns the packets read.
sub bin_is {
    my ($sock, $pkt, $wants, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $wants = [$wants] if ref $wants eq 'HASH';
    send_bytes($sock, $pkt) or return fail("$name: could not send") if length $pkt;
    my @got;
    my $ok = 1;
    for my $i (0 .. $#$wants) {
        my $got = bin_read($sock);
        push @got, $got;
        next if _matches($got, $wants->[$i]);
        $ok = 0;
        diag("answer $i:\n   got: " . _show($got) . "\nwanted: " . _show($wants->[$i]));
        last unless $got;
    }
    ok($ok, $name);
    return @got;
}

# The server closes the connection (after anything still pending, which is
# returned).
sub bin_closed {
    my ($sock, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($rest, $eof) = read_available($sock, 1);
    ok($eof, $name || 'the server closed the connection')
        or diag('still open; it sent: ' . unpack('H*', $rest));
    return $rest;
}

# set (or $o{op}) and return the answer packet.
sub bin_set {
    my ($sock, $key, $val, %o) = @_;
    return bin_cmd($sock, bin_req($o{op} || 'set', key => $key, value => $val,
                                  extras => ext_store($o{flags}, $o{exptime}),
                                  cas => $o{cas}, opaque => $o{opaque}));
}

# get (or $op) and return the answer packet.
sub bin_get {
    my ($sock, $key, $op) = @_;
    return bin_cmd($sock, bin_req($op || 'get', key => $key));
}

# incr/decr ($op) and return the answer packet.
sub bin_incr {
    my ($sock, $op, $key, $delta, $init, $exp, %o) = @_;
    return bin_cmd($sock, bin_req($op, key => $key, extras => ext_incr($delta, $init, $exp),
                                  cas => $o{cas}));
}

1;

__END__

=head1 NAME

BinProto - memcached's binary protocol for the tests in t/

=head1 SYNOPSIS

    use MemcachedTest;
    use BinProto;

    my $sock = $srv->new_sock;
    bin_is($sock, bin_req('set', key => 'k', value => 'v', extras => ext_store(5, 0)),
           res_pkt('set', 'ok', cas => 'any'), 'set');
    bin_is($sock, bin_req('getk', key => 'k', opaque => 7),
           res_pkt('getk', 'ok', opaque => 7, extras => pack('N', 5), key => 'k',
                   value => 'v', cas => 'any'), 'getk');
    bin_is($sock, bin_req('get', key => 'nope'), res_pkt('get', 'enoent'), 'miss');

=head1 FUNCTIONS

=over

=item bin_req($op, key =>, extras =>, value =>, cas =>, opaque =>, magic =>, keylen =>, extlen =>, bodylen =>, datatype =>)

A request packet; C<$op> is a name from C<%OP> or a number.  The length
fields are computed unless overridden (to build bad frames).

=item ext_store($flags, $exptime), ext_incr($delta, $initial, $exptime), ext_exp($exptime)

Extras of the storage, arithmetic, and touch/gat/flush requests.

=item bin_read($sock [, $timeout])

The next answer packet as a hash, undef if none arrives in time.

=item bin_cmd($sock, $packet)

Send and return the first answer packet.

=item res_pkt($op, $status, opaque =>, cas =>, extras =>, key =>, value =>)

An expected answer.  A failure's value defaults to memcached's message
(unless a key is given: getk's miss carries the key and no message).
C<< cas => 'any' >> accepts any non-zero CAS; the default is 0.

=item bin_is($sock, $packet, $want | [$want, ...], $name)

Send C<$packet> (nothing when empty) and check that the next answers are
exactly C<$want...>, field by field.  One test; returns the packets.

=item bin_closed($sock [, $name])

A test that the server closes the connection within a second.

=item bin_set, bin_get, bin_incr

Shorthands returning the answer packet.

=back

=cut
