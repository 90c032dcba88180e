#!/usr/bin/env bash
# Load test: the axum hello-world of every variant (no auth, ours, each peer's middleware)
# served on 127.0.0.1 and driven by wrk for a fixed time; prints requests/s, p99 latency and
# the server's CPU time per request, each beside the no-auth baseline measured in the same run.
#
#   benches/load.sh                 # 2 threads, 32 connections, 2 s per run, 6 rounds (~4 min)
#   DURATION=1s ROUNDS=2 benches/load.sh   # shorter
#   benches/load.sh no_auth ours_api_key   # only these variants (no_auth is always first)
#
# Throughput on a shared 2-core VM drifts by 10-25% within seconds, more than the gap
# being measured, so every variant is compared with the no-auth baseline measured right before
# and right after it: each round runs no_auth, v1, no_auth, v2, ..., no_auth (every other round
# in reverse order), a variant's ratio in a round is to the mean of its two neighbours, and the
# ratio printed is the median over the rounds. The requests/s and p99 printed are each
# variant's best round; every run's figures are printed as it ends.
#
# wrk shares the cores with the server, so requests/s also carries wrk's own cost. The server's
# CPU time per request (user + system, from /proc, over the timed run) is printed beside it: the
# difference to no-auth is what the middleware costs, kernel networking included once for all.
#
# Installs wrk (Debian package) when missing. Only 127.0.0.1 is ever targeted, and every
# server started here is stopped on exit.
set -euo pipefail

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-2s}
ROUNDS=${ROUNDS:-6}
ALL=(no_auth ours_api_key ours_oidc_cached ours_oidc_cold ours_chain_oidc_cached
    jwt_authorizer axum_jwt_auth tower_oauth2_resource_server)

cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    if ! apt-get install -y wrk >/dev/null 2>&1; then
        apt-get update >/dev/null
        apt-get install -y wrk >/dev/null
    fi
fi

if (($#)); then
    variants=(no_auth)
    for v in "$@"; do [[ $v == no_auth ]] || variants+=("$v"); done
else
    variants=("${ALL[@]}")
fi

echo "building the server target (cargo bench -p benches --bench server --no-run)" >&2
server=$(cargo bench -p benches --bench server --no-run --message-format=json 2>/dev/null |
    grep '"reason":"compiler-artifact"' | grep '"name":"server"' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [[ -z $server || ! -x $server ]]; then
    echo "could not build or find the server bench executable" >&2
    exit 1
fi

# Under target/: temporary directories elsewhere may be swept by other test runs.
mkdir -p target
work=$(mktemp -d "$PWD/target/load-sh.XXXXXX")
pid=""
cleanup() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Converts wrk's latency ("812.00us", "1.23ms", "2.01s") to microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

# The server's CPU time so far (user + system), in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
tick_us=$((1000000 / $(getconf CLK_TCK)))

# Serves $variant, drives it with wrk, and appends one line to $runs:
# <round> <variant> <requests/s> <p99 us> <server CPU us per request> [note].
measure() {
    local round=$1 variant=$2
    out="$work/$variant.out"
    "$server" "$variant" >"$out" 2>"$work/$variant.err" &
    pid=$!
    addr=""
    for _ in $(seq 1 300); do
        addr=$(sed -n 's/^LISTEN //p' "$out")
        [[ -n $addr ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [[ -z $addr || $addr != 127.0.0.1:* ]]; then
        echo "$variant: the server did not start" >&2
        cat "$work/$variant.err" >&2
        exit 1
    fi
    header=$(sed -n 's/^HEADER //p' "$out")
    args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency)
    [[ $header != none ]] && args+=(-H "$header")
    url="http://$addr/hello"
    # One request first: keys load lazily or in the background for some peers.
    ready=""
    for _ in $(seq 1 50); do
        if [[ $header == none ]]; then
            status=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
        else
            status=$(curl -s -o /dev/null -w '%{http_code}' -H "$header" "$url" || true)
        fi
        [[ $status == 200 ]] && ready=1 && break
        sleep 0.1
    done
    [[ -n $ready ]] || { echo "$variant: never answered 200 (last: $status)" >&2; exit 1; }
    ticks_before=$(cpu_ticks "$pid")
    wrk "${args[@]}" "$url" >"$work/$variant.wrk"
    ticks=$(($(cpu_ticks "$pid") - ticks_before))
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""

    rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/$variant.wrk")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$work/$variant.wrk")")
    requests=$(awk '/requests in/ {print $1}' "$work/$variant.wrk")
    cpu=$(awk -v t="$ticks" -v us="$tick_us" -v n="$requests" 'BEGIN { printf "%.3f", t * us / n }')
    note=""
    if grep -q 'Non-2xx' "$work/$variant.wrk"; then
        note="$(grep 'Non-2xx' "$work/$variant.wrk" | sed 's/^ *//')"
    fi
    if grep -q 'Socket errors' "$work/$variant.wrk"; then
        note="$note $(grep 'Socket errors' "$work/$variant.wrk" | sed 's/^ *//')"
    fi
    echo "round $round: $variant $rps requests/s, p99 $p99 us, server CPU $cpu us/request $note" >&2
    echo "$round $variant $rps $p99 $cpu $note" >>"$runs"
}

runs="$work/runs"
: >"$runs"
echo "$(date -u +%FT%TZ) $(nproc) cores, load:$(uptime | sed 's/.*load average://'), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
    others=("${variants[@]:1}")
    if ((round % 2 == 0)); then
        reversed=()
        for ((i = ${#others[@]} - 1; i >= 0; i--)); do reversed+=("${others[i]}"); done
        others=("${reversed[@]}")
    fi
    # no_auth before every variant and once more at the end: each variant is compared with
    # the baseline measured right before and right after it.
    for variant in "${others[@]}"; do
        measure "$round" no_auth
        measure "$round" "$variant"
    done
    measure "$round" no_auth
done

echo "load at the end:$(uptime | sed 's/.*load average://')"
# Per variant: the best requests/s and p99 of its rounds; and, per round, its requests/s, p99
# and CPU per request against the mean of the two no-auth runs around it, of which the median
# over the rounds is printed.
printf '%-30s %12s %10s %10s %10s %12s %12s %s\n' variant "requests/s" "p99 ms" "rps/base" "p99/base" "cpu us/req" "+cpu us/req" note
awk -v order="${variants[*]}" '
    function median(list,    n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        n++; round[n] = $1; name[n] = $2; rps[n] = $3; p99[n] = $4; cpu[n] = $5
        note[n] = ""; for (i = 6; i <= NF; i++) note[n] = note[n] " " $i
    }
    END {
        for (i = 1; i <= n; i++) {
            v = name[i]
            if (!(v in best) || rps[i] > best[v]) { best[v] = rps[i]; bestp99[v] = p99[i] }
            if (note[i] != "") notes[v] = notes[v] note[i]
            if (v == "no_auth") { cpus[v] = cpus[v] " " cpu[i]; continue }
            # The no-auth runs just before and after this one, in the same round.
            b = (rps[i - 1] + rps[i + 1]) / 2; bp = (p99[i - 1] + p99[i + 1]) / 2
            bc = (cpu[i - 1] + cpu[i + 1]) / 2
            ratio[v] = ratio[v] " " rps[i] / b; pratio[v] = pratio[v] " " p99[i] / bp
            cpus[v] = cpus[v] " " cpu[i]; added[v] = added[v] " " cpu[i] - bc
        }
        k = split(order, names, " ")
        for (j = 1; j <= k; j++) {
            v = names[j]
            if (v == "no_auth") { r = 1; pr = 1; a = 0 } else { r = median(ratio[v]); pr = median(pratio[v]); a = median(added[v]) }
            printf "%-30s %12.0f %10.3f %9.1f%% %9.2fx %12.2f %12.2f %s\n", v, best[v], bestp99[v] / 1000, 100 * r, pr, median(cpus[v]), a, notes[v]
        }
    }' "$runs"
