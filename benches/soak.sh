#!/usr/bin/env bash
# Soak under load with faults (issue 18, item 4): minutes, not part of CI.
#
# Runs the demo (release build) at full load over HTTP and gRPC with a mix of valid, expired,
# tampered and unknown credentials (API keys, OIDC tokens, HMAC role tokens), while the IdP
# rotates keys every 20 s, goes down in five ways (connections closed, refused, 503, an HTML
# page, no answer) and comes back, and API_KEYS_FILE is rewritten every 3 s. The load client
# (benches/soak/, built with `--features soak`) starts the IdP and the demo itself, knows the
# answer each request may get at each moment (benches/soak/model.rs says how), and counts the
# wrong ones. It samples the demo's RSS and open file descriptors every 5 s.
#
#   benches/soak.sh                       # 16 minutes (warm-up, then 10 judged), 16 HTTP connections + 16 gRPC streams
#   SOAK_SECONDS=120 benches/soak.sh      # shorter
#   HTTP_CONNECTIONS=8 GRPC_STREAMS=8 benches/soak.sh
#
# Passes (exit 0) with zero wrong answers, RSS growth after warm-up under 10% and file
# descriptors flat; prints a summary either way. The demo's log is kept (its path is printed)
# when the soak fails. Only 127.0.0.1 is used; the demo is stopped on exit.
set -euo pipefail

SOAK_SECONDS=${SOAK_SECONDS:-960}
HTTP_CONNECTIONS=${HTTP_CONNECTIONS:-16}
GRPC_STREAMS=${GRPC_STREAMS:-16}

cd "$(dirname "$0")/.."

# The executable a `cargo build --release` of these arguments made.
build() {
    local name=$1
    shift
    echo "building $name (cargo build --release $*)" >&2
    cargo build --release "$@" --message-format=json 2>/dev/null |
        grep '"reason":"compiler-artifact"' | grep "\"name\":\"$name\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}
demo=$(build demo -p auth-examples --bin demo)
soak=$(build soak -p benches --features soak --bin soak)
for exe in "$demo" "$soak"; do
    if [[ -z $exe || ! -x $exe ]]; then
        echo "could not build the demo or the soak client (run the cargo commands above to see why)" >&2
        exit 1
    fi
done

# Under target/: temporary directories elsewhere may be swept by other test runs.
mkdir -p target
work=$(mktemp -d "$PWD/target/soak-sh.XXXXXX")
status=0
"$soak" --demo "$demo" --work "$work" --seconds "$SOAK_SECONDS" \
    --http "$HTTP_CONNECTIONS" --grpc "$GRPC_STREAMS" || status=$?
if ((status == 0)); then
    rm -rf "$work"
else
    echo "the demo's log and the key file are in $work" >&2
fi
exit "$status"
