#!/usr/bin/perl
# Failover with a virtual address (issue 6, item 4): two replicated nodes,
# each in its own network namespace on one LAN, each with keepalived
# running the shipped scripts/keepalived/keepalived.conf and its health
# check.  A client on the LAN talks only to the virtual address; when the
# memcachedrep of the node holding it is killed, the address moves to the
# other node and the client keeps reading its keys there.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use File::Temp ();
use Time::HiRes qw(time sleep);

use MemcachedTest;
use E2E;

require_root();
require_netns();
plan skip_all => 'replication is memcachedrep\'s (the binary under test is memcached)'
    unless is_memcachedrep();
need_packages('keepalived');

my $VIP = '10.77.0.100';
my $NKEYS = 200;
my (%want, @keepaliveds);
my $lab = netns_lab(2);
my $check = secure_scripts_dir();

my @confs = map {
    keepalived_conf(router_id => "memcachedrep_$_", check => $check, port => 11211, vrid => 61,
                    priority => $_ == 1 ? 150 : 100, vip => $VIP)
} 1, 2;
{
    my ($fh, $file) = File::Temp::tempfile('mcr-e2e-conf.XXXXXX', TMPDIR => 1, UNLINK => 1);
    print $fh $confs[0];
    close $fh;
    my $out = run_ok('keepalived --config-test accepts the example configuration',
                     'keepalived', '--config-test', '-f', $file);
    unlike($out, qr/error|unknown keyword/i, 'and reports no error') or diag($out);
}

my @nodes = map {
    spawn(ns => $lab->{nodes}[$_ - 1], name => "memcachedrep-$_",
          cmd => [memcached_bin(), '-u', 'root', '-U', '0', '-m', '32', '-p', '11211',
                  '-x', $lab->{addr}[3 - $_]])
} 1, 2;
push @keepaliveds, start_keepalived($lab->{nodes}[$_ - 1], $confs[$_ - 1]) for 1, 2;

enter_netns($lab->{hub});
my @addr = @{$lab->{addr}};
ok(wait_listening($addr[$_], 11211, 10), "node $_ listens") for 1, 2;
my $streaming = wait_until(sub { !grep { repl_state($addr[$_]) ne 'streaming' } 1, 2 }, 20, 0.1);
ok($streaming, 'the pair replicates');

my $holder = wait_until(sub { vip_holder($lab, $VIP) }, 20, 0.2);
ok($holder, "a node holds the virtual address $VIP") or diag(keepalived_logs());
my $other = 3 - $holder;

# A client that knows only the virtual address.
my $client = mc_client($VIP, 11211, 1);
%want = map { ("session:$_" => "value-$_-" . ('x' x ($_ % 50))) } 1 .. $NKEYS;
my $stored = grep { ($client->set($_, $want{$_}) // '') eq 'STORED' } sort keys %want;
is($stored, $NKEYS, "$NKEYS keys written through the virtual address");
ok(wait_until(sub { all_there(mc_client($addr[$other], 11211)) }, 10, 0.1),
   "node $other (the standby) holds every key");

# The node holding the address dies.
$nodes[$holder - 1]->signal('KILL');
my $t0 = time;
my $back = wait_until(sub { all_there($client) }, 30, 0.2);
my $took = time - $t0;
ok($back, sprintf('every key read again through the virtual address (%.1f s after the kill)',
                  $took))
    or diag(keepalived_logs());
is(vip_holder($lab, $VIP), $other, "the virtual address moved to node $other");
is($client->set('after:failover', 'yes'), 'STORED', 'writes through the virtual address work');
is(mc_client($addr[$other], 11211)->get('after:failover'), 'yes',
   'and land on the surviving node');

my $survivor = $nodes[$other - 1];
$survivor->stop;
ok($survivor->sanitizer_clean, 'the surviving node ended without a sanitizer report')
    or diag($survivor->stderr_text);

done_testing;

# Every key of %want has its value on the server behind $c.
sub all_there {
    my ($c) = @_;
    my @keys = sort keys %want;
    while (my @batch = splice @keys, 0, 50) {
        my $got = $c->get_multi(@batch) // return 0;
        return 0 if grep { ($got->{$_} // '') ne $want{$_} } @batch;
    }
    return 1;
}

sub repl_state {
    my ($host) = @_;
    my $st = mc_client($host, 11211)->stats or return '';
    return $st->{repl_state} // '';
}

sub keepalived_logs {
    return join '', map { "--- $_->{name}:\n" . $_->output } @keepaliveds;
}
