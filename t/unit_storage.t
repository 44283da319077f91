#!/usr/bin/perl
# The storage engine's unit test (t/unit-storage.c): runs the binary named
# by $UNIT_STORAGE_BIN (or ./t/unit-storage), turns each "ok - ..." /
# "not ok - ..." line it prints into one test (a "# ..." line is a note,
# anything else a diagnostic), and passes only if the binary exits 0.
use strict;
use warnings;
use FindBin;
use Test::More;

my $bin = $ENV{UNIT_STORAGE_BIN} // "$FindBin::Bin/unit-storage";
$bin = './t/unit-storage' unless -x $bin;
plan skip_all => "no unit-storage binary ($bin); run make t/unit-storage"
    unless -x $bin;

open(my $out, '-|', $bin) or die "can't run $bin: $!";
while (my $line = <$out>) {
    chomp $line;
    if ($line =~ /^(not )?ok - (.*)$/) {
        ok(!defined $1, $2);
    } elsif ($line =~ /^# (.*)$/) {
        note($1);
    } else {
        diag($line);
    }
}
close($out);
is($? >> 8, 0, "$bin exited 0");
is($? & 127, 0, "$bin was not killed by a signal");
done_testing();
