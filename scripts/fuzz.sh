#!/usr/bin/env bash
# Runs every fuzz target (func Fuzz* in *_test.go) for FUZZTIME each, one
# at a time. A failure that writes an input under testdata/fuzz/ fails the
# run (the input stays as a new seed). Go's fuzzing coordinator can also
# fail a run at the very end of -fuzztime with a bare "context deadline
# exceeded" and no input, when a worker is still inside an execution as
# the deadline passes (golang/go#75804, fixed in Go 1.27): that is
# reported, the target's seed corpus is replayed, and only a failing
# replay fails the run.
set -euo pipefail

go=${GO:-go}
fuzztime=${FUZZTIME:-10s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

grep -r --include='*_test.go' --exclude-dir=tools --exclude-dir=.git -o '^func Fuzz[A-Za-z0-9_]*' . | sort -u |
	while IFS=: read -r file fn; do
		pkg=./$(dirname "${file#./}")
		name=${fn#func }
		corpus="$pkg/testdata/fuzz/$name"
		before=$(ls "$corpus" 2>/dev/null | sort || true)
		echo "fuzz: $name in $pkg for $fuzztime"
		if "$go" test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$pkg" </dev/null 2>&1 | tee "$out"; then
			continue
		fi
		after=$(ls "$corpus" 2>/dev/null | sort || true)
		if [[ "$before" != "$after" ]]; then
			echo "fuzz: $name found a failing input; it is kept under $corpus" >&2
			exit 1
		fi
		if grep -q '^    context deadline exceeded$' "$out" && ! grep -q -- '--- FAIL: '"$name"'/' "$out"; then
			echo "fuzz: $name: the fuzzing coordinator hit its deadline with a worker mid-run and wrote no input (golang/go#75804); replaying the seed corpus" >&2
			"$go" test -count=1 -run "^$name\$" "$pkg" </dev/null
			continue
		fi
		exit 1
	done
