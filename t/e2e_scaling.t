#!/usr/bin/perl
# Scaling past one pair (issue 6, item 5): two replicated pairs, four nodes
# in their own network namespaces on one LAN, each pair behind a virtual
# address moved by keepalived (the shipped example).  Keys are spread over
# the pairs by consistent hashing (ketama), two ways users do it:
#   - nutcracker (twemproxy) with the shipped scripts/nutcracker example,
#     pointing at the pairs' virtual addresses;
#   - the client itself: php-memcached (libmemcached) with ketama.
# Every key must land on both nodes of exactly one pair, both pairs must get
# keys, and reads through nutcracker must keep working when the node that
# holds a pair's address dies.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time);

use MemcachedTest;
use E2E;

require_root();
require_netns();
plan skip_all => 'replication is memcachedrep\'s (the binary under test is memcached)'
    unless is_memcachedrep();
need_packages(qw(keepalived nutcracker php-cli php-memcached));

my $NKEYS = 300;
my %VIP = (1 => '10.77.0.101', 2 => '10.77.0.102');    # pair => its address
my %PAIR_OF = (1 => 1, 2 => 1, 3 => 2, 4 => 2);          # node => its pair
my %PEER = (1 => 2, 2 => 1, 3 => 4, 4 => 3);
my $dir = tempdir('mcr-scaling.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my (@keepaliveds, %nodes);

my $lab = netns_lab(4);
my @addr = @{$lab->{addr}};
my $check = secure_scripts_dir();
for my $i (1 .. 4) {
    $nodes{$i} = spawn(ns => $lab->{nodes}[$i - 1], name => "memcachedrep-$i",
                       cmd => [memcached_bin(), '-u', 'root', '-U', '0', '-m', '32',
                               '-p', '11211', '-x', $addr[$PEER{$i}]]);
    my $pair = $PAIR_OF{$i};
    push @keepaliveds, start_keepalived($lab->{nodes}[$i - 1], keepalived_conf(
        router_id => "memcachedrep_$i", check => $check, port => 11211, vrid => 60 + $pair,
        priority => $i == $pair * 2 - 1 ? 150 : 100, vip => $VIP{$pair}));
}

enter_netns($lab->{hub});
ok(wait_listening($addr[$_], 11211, 10), "node $_ listens") for 1 .. 4;
ok(wait_until(sub { !grep { repl_state($addr[$_]) ne 'streaming' } 1 .. 4 }, 20, 0.1),
   'both pairs replicate');
for my $pair (1, 2) {
    ok(wait_until(sub { vip_holder($lab, $VIP{$pair}) }, 20, 0.2),
       "pair ${pair}'s virtual address $VIP{$pair} is up") or diag(keepalived_logs());
}

# ---- nutcracker ----

my $proxy_port = free_port();
my $conf = nutcracker_conf($proxy_port);
run_ok('nutcracker accepts the example configuration', 'nutcracker', '-t', '-c', $conf);
my $proxy = spawn(name => 'nutcracker',
                  cmd => ['nutcracker', '-c', $conf, '-s', free_port(), '-a', '127.0.0.1',
                          '-o', "$dir/nutcracker.log"]);
ok(wait_listening('127.0.0.1', $proxy_port, 10), 'nutcracker listens');

my $nc = mc_client('127.0.0.1', $proxy_port, 2);
my %want = map { ("nc:$_" => "value-$_") } 1 .. $NKEYS;
is(scalar(grep { ($nc->set($_, $want{$_}) // '') eq 'STORED' } sort keys %want), $NKEYS,
   "$NKEYS keys written through nutcracker");
check_placement('nutcracker', \%want);

# ---- client-side consistent hashing: php-memcached ----

my $php = "$dir/ketama.php";
open my $fh, '>', $php or die "$php: $!";
print $fh <<'PHP';
<?php
// php ketama.php set|check N HOST... : N keys "php:<i>" over the servers by
// libmemcached's ketama; "check" prints how many read back right.
$m = new Memcached();
$m->setOption(Memcached::OPT_DISTRIBUTION, Memcached::DISTRIBUTION_CONSISTENT);
$m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, false);
$m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 1000);
foreach (array_slice($argv, 3) as $host) {
    $m->addServer($host, 11211);
}
$good = 0;
for ($i = 1; $i <= $argv[2]; $i++) {
    if ($argv[1] === 'set') {
        $good += $m->set("php:$i", "value-$i") ? 1 : 0;
    } else {
        $good += $m->get("php:$i") === "value-$i" ? 1 : 0;
    }
}
echo "$good\n";
PHP
close $fh;

my @php = ('php', $php);
my ($rc, $out) = run_cmd(@php, 'set', $NKEYS, $VIP{1}, $VIP{2});
is("$rc $out", "0 $NKEYS\n", "php-memcached (ketama) wrote $NKEYS keys over the two pairs");
check_placement('php-memcached', {map { ("php:$_" => "value-$_") } 1 .. $NKEYS});

# ---- a pair loses its active node ----

my $victim = vip_holder($lab, $VIP{1});
$nodes{$victim}->signal('KILL');
my $t0 = time;
my $all_read = wait_until(sub {
    my @keys = sort keys %want;
    while (my @batch = splice @keys, 0, 50) {
        my $got = $nc->get_multi(@batch) // return 0;
        return 0 if grep { ($got->{$_} // '') ne $want{$_} } @batch;
    }
    return 1;
}, 30, 0.2);
ok($all_read, sprintf('node %d (pair 1\'s active node) killed: every key read through '
                      . 'nutcracker again after %.1f s', $victim, time - $t0))
    or diag(keepalived_logs());
is(vip_holder($lab, $VIP{1}), $PEER{$victim}, "pair 1's address moved to node $PEER{$victim}");
($rc, $out) = run_cmd(@php, 'check', $NKEYS, $VIP{1}, $VIP{2});
is("$rc $out", "0 $NKEYS\n", 'php-memcached reads every one of its keys too');

for my $i (grep { $_ != $victim } 1 .. 4) {
    $nodes{$i}->stop;
    ok($nodes{$i}->sanitizer_clean, "node $i ended without a sanitizer report")
        or diag($nodes{$i}->stderr_text);
}

done_testing;

# Which nodes hold each key of %$want (read on every node directly): each
# must be on both nodes of one pair and nowhere else, and both pairs must
# have a fair share.
sub check_placement {
    my ($via, $want) = @_;
    my (%on, %per_pair);
    my $settled = wait_until(sub {
        %on = ();
        for my $i (1 .. 4) {
            my $c = mc_client($addr[$i], 11211, 2);
            my @keys = sort keys %$want;
            while (my @batch = splice @keys, 0, 50) {
                my $got = $c->get_multi(@batch) // return 0;
                for (@batch) {
                    push @{$on{$_}}, $i if defined $got->{$_} && $got->{$_} eq $want->{$_};
                }
            }
        }
        return !grep { @{$on{$_} // []} != 2 } keys %$want;
    }, 10, 0.2);
    ok($settled, "$via: every key is on exactly two nodes");
    my @misplaced = grep {
        my $n = $on{$_} // [];
        @$n != 2 || $PEER{$n->[0]} != $n->[1]
    } sort keys %$want;
    is(scalar(@misplaced), 0, "$via: ...the two nodes of one pair")
        or diag(join ', ', map { "$_ on (@{$on{$_} // []})" } @misplaced[0 .. 9]);
    $per_pair{$PAIR_OF{$on{$_}[0]}}++ for grep { @{$on{$_} // []} } keys %$want;
    my $n = keys %$want;
    for my $pair (1, 2) {
        cmp_ok($per_pair{$pair} // 0, '>=', $n / 5, "$via: pair $pair holds a fair share "
               . "of the keys (" . ($per_pair{$pair} // 0) . " of $n)");
    }
}

sub repl_state {
    my ($host) = @_;
    my $st = mc_client($host, 11211)->stats or return '';
    return $st->{repl_state} // '';
}

# The shipped scripts/nutcracker/memcachedrep.yml with the lab's addresses.
sub nutcracker_conf {
    my ($port) = @_;
    open my $in, '<', repo_root() . '/scripts/nutcracker/memcachedrep.yml' or die "$!";
    local $/;
    my $yml = <$in>;
    for ([qr/listen: 127\.0\.0\.1:22121/, "listen: 127.0.0.1:$port"],
         [qr/- 192\.168\.168\.60:11211:1 pair1/, "- $VIP{1}:11211:1 pair1"],
         [qr/- 192\.168\.168\.70:11211:1 pair2/, "- $VIP{2}:11211:1 pair2"]) {
        $yml =~ s/$_->[0]/$_->[1]/ or die "nutcracker example: no '$_->[0]'";
    }
    my $file = "$dir/nutcracker.yml";
    open my $out, '>', $file or die "$file: $!";
    print $out $yml;
    close $out;
    return $file;
}

sub keepalived_logs {
    return join '', map { "--- $_->{name}:\n" . $_->output } @keepaliveds;
}
