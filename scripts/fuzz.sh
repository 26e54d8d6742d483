#!/usr/bin/env bash
# Run every fuzz target for a bounded time, then keep what the fuzzers found as regression
# inputs: each target's grown corpus is minimized (`cargo fuzz cmin`) into
# fuzz/regressions/<target>/, which is committed and replayed by `cargo test` on stable
# (crates/mpcluster-core/tests/fuzz_regressions.rs). A crash is copied there too, and the
# script fails naming it.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Needs a nightly toolchain (`rustup toolchain install nightly`; without it RUSTC_BOOTSTRAP=1 on
# stable is tried) and `cargo install cargo-fuzz --locked --version 0.13.2`.
set -euo pipefail

secs=${1:-60}
shift || true
all=(parse_maps_json parse_raw broadcast_decode snapshot apply_plan)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

cd "$(dirname "$0")/../fuzz"
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz.sh: cargo-fuzz is not installed: cargo install cargo-fuzz --locked --version 0.13.2" >&2
    exit 1
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

dict_of() {
    case "$1" in
        parse_*) echo dicts/multipathd.dict ;;
        *) echo dicts/status.dict ;;
    esac
}

crashed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "regressions/$t" "seeds/$t"
    echo "== fuzz.sh: $t for ${secs}s"
    if ! "${fuzz[@]}" run "$t" "corpus/$t" "seeds/$t" "regressions/$t" -- \
        -dict="$(dict_of "$t")" -max_total_time="$secs" -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1; then
        found=0
        for c in artifacts/"$t"/crash-* artifacts/"$t"/oom-* artifacts/"$t"/timeout-*; do
            [ -e "$c" ] || continue
            cp "$c" "regressions/$t/"
            crashed+=("$t: fuzz/regressions/$t/$(basename "$c")")
            found=1
        done
        # No input to blame: the target did not build or run.
        [ "$found" = 1 ] || crashed+=("$t: cargo fuzz run failed without a crash input (see above)")
        continue
    fi
    # Minimize what was found (together with what was kept before) into regressions/<t>.
    merged=$(mktemp -d)
    cp "corpus/$t"/* "regressions/$t"/* "$merged"/ 2>/dev/null || true
    "${fuzz[@]}" cmin "$t" "$merged" -- -max_len=65536 >/dev/null 2>&1
    rm -f "regressions/$t"/*
    cp "$merged"/* "regressions/$t"/ 2>/dev/null || true
    rm -rf "$merged"
    echo "== fuzz.sh: $t: $(ls "regressions/$t" | wc -l) regression inputs ($(du -sh "regressions/$t" | cut -f1))"
done

if [ "${#crashed[@]}" -gt 0 ]; then
    printf 'fuzz.sh: failures (crash inputs are now regression inputs: fix the code, then commit them):\n' >&2
    printf '  %s\n' "${crashed[@]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash; commit fuzz/regressions/ (replayed by cargo test -p mpcluster-core --test fuzz_regressions)"
