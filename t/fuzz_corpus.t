#!/usr/bin/perl
# Every input of the fuzzers' corpus (fuzz/corpus/<harness>/: seeds and the
# reproducers of bugs the fuzzers found) replayed through its harness by
# fuzz/replay-<harness> (fuzz/driver.c, built by "make test" with the
# configured compiler and flags, so in the sanitizer build too).  An input
# that crashes, trips a sanitizer or fails a harness check fails the test.
use strict;
use warnings;
use FindBin;
use Test::More;

my $bindir = $ENV{FUZZ_BIN_DIR} // "$FindBin::Bin/../fuzz";
my $corpus = $ENV{FUZZ_CORPUS} // "$FindBin::Bin/../fuzz/corpus";

for my $h (qw(proto udp repl)) {
    my $bin = "$bindir/replay-$h";
    SKIP: {
        skip("no $bin; run make fuzz/replay-$h", 3) unless -x $bin;
        my @inputs = grep { -f } glob("$corpus/$h/*");
        ok(@inputs > 0, "$h: corpus is not empty");
        my $out = `$bin $corpus/$h 2>&1`;
        my $status = $?;
        is($status, 0, "$h: all " . scalar(@inputs) . " inputs replayed")
            or diag(join("\n", (split /\n/, $out)[-30 .. -1]));
        like($out, qr/^replayed ${\ scalar @inputs} inputs$/m, "$h: the replay saw every input");
    }
}
done_testing();
