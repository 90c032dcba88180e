#!/usr/bin/env python3
"""Prints the tables of BENCHMARKS.md from one run of `cargo bench -p benches`.

    cargo bench -p benches --bench checks --bench service | tee target/bench-peers.log
    benches/load.sh | tee target/load.log
    python3 benches/summarize.py target/bench-peers.log [target/load.log]

Times are criterion's median estimates (target/criterion/<group>/<bench>/new/estimates.json);
allocations are the `ALLOCS` lines the benches print. Ratios are taken within this one run.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
PEERS = ["jwt_authorizer", "axum_jwt_auth", "tower_oauth2_resource_server"]


def median_ns(full_id):
    path = CRITERION / full_id / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns):
    if ns is None:
        return "n/a"
    if ns < 1000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns / 1e6:.2f} ms"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}"


def allocations(log):
    found = {}
    if log and Path(log).exists():
        for line in Path(log).read_text().splitlines():
            m = re.match(r"^ALLOCS (\S+) ([\d.]+)$", line.strip())
            if m:
                found[m.group(1)] = float(m.group(2))
    return found


def a(allocs, key):
    v = allocs.get(key)
    return "n/a" if v is None else f"{v:g}"


def main():
    log = sys.argv[1] if len(sys.argv) > 1 else None
    load = sys.argv[2] if len(sys.argv) > 2 else None
    allocs = allocations(log)

    print("### Per check (criterion median; allocations per check)\n")
    print("| check | ours | allocs | floor: jsonwebtoken `decode` | ours / floor "
          "| jwt-authorizer | axum-jwt-auth | tower-oauth2-resource-server | fastest peer / ours |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in ["1", "1000"]:
        fid = f"check_api_key/ours_{n}_keys"
        ours = median_ns(fid)
        print(f"| API key, {n} key{'s' if n != '1' else ''} | {fmt(ours)} | {a(allocs, fid)} "
              "| | | | | | |")
    ours = median_ns("check_hmac/ours")
    floor = median_ns("check_hmac/jsonwebtoken_decode")
    print(f"| HMAC role token (HS256) | {fmt(ours)} | {a(allocs, 'check_hmac/ours')} | "
          f"{fmt(floor)} (HS256) | {ratio(ours, floor)} | | | | |")
    for alg in ["rs256", "es256", "eddsa"]:
        group = f"check_oidc_{alg}"
        floor = median_ns(f"{group}/jsonwebtoken_decode")
        peers = {p: median_ns(f"{group}/{p}") for p in PEERS}
        present = [v for v in peers.values() if v is not None]
        fastest = min(present) if present else None
        peer_cells = " | ".join(
            f"{fmt(peers[p])} ({a(allocs, f'{group}/{p}')})" for p in PEERS
        )
        for mode in ["cold", "cached"]:
            fid = f"{group}/ours_{mode}"
            ours = median_ns(fid)
            print(f"| OIDC {alg.upper().replace('EDDSA', 'EdDSA')} {mode} | {fmt(ours)} | "
                  f"{a(allocs, fid)} | {fmt(floor)} ({a(allocs, f'{group}/jsonwebtoken_decode')}) | "
                  f"{ratio(ours, floor)} | {peer_cells} | {ratio(fastest, ours, 1)}x |")
    fid = "check_oidc_rs256/ref_sha256_of_token"
    print(f"| (reference: SHA-256 of the RS256 token, what a cache hit used to start with) | {fmt(median_ns(fid))} "
          f"| {a(allocs, fid)} | | | | | | |")
    fid = "check_oidc_rs256/ref_siphash_of_token"
    print(f"| (reference: keyed SipHash-1-3 of the whole token) | {fmt(median_ns(fid))} "
          f"| {a(allocs, fid)} | | | | | | |")
    fid = "check_oidc_rs256/ref_siphash_of_last_32"
    print(f"| (reference: keyed SipHash-1-3 of the token's last 32 characters, the cache key now) | {fmt(median_ns(fid))} "
          f"| {a(allocs, fid)} | | | | | | |")
    for name, label in [("bearer_800_bytes", "taking the bearer token from the headers (layer, before any check)"),
                        ("is_b64token_800_bytes", "of which `is_b64token` on 800 bytes")]:
        fid = f"check_extract/{name}"
        print(f"| {label} | {fmt(median_ns(fid))} | {a(allocs, fid)} | | | | | | |")
    fid = "check_request_overhead/noop_service"
    print(f"| (building a request and calling a no-op service: part of tower-oauth2's figure) "
          f"| {fmt(median_ns(fid))} | {a(allocs, fid)} | | | | | | |")

    print("\n### Route once: each token through its owner alone and through the three-method chain\n")
    print("A chain of one is what a layer with one method runs. The chain reads a bearer JWT once and "
          "hands it to the method that owns its issuer, after asking the OIDC token cache.\n")
    print("| token | owner alone | api_key, hmac, oidc | api_key, oidc, hmac |\n|---|---:|---:|---:|")
    for kind, label in [("oidc_cached", "OIDC RS256, cached"), ("oidc_cold", "OIDC RS256, cold"),
                        ("hmac", "HMAC role token")]:
        alone = median_ns(f"check_route/{kind}_alone")
        cells = []
        for order in ["api_key_hmac_oidc", "api_key_oidc_hmac"]:
            fid = f"check_route/{kind}_{order}"
            t = median_ns(fid)
            delta = f"{t - alone:+.0f} ns" if t and alone else "?"
            cells.append(f"{fmt(t)} ({delta}; {a(allocs, fid)})")
        print(f"| {label} | {fmt(alone)} ({a(allocs, f'check_route/{kind}_alone')}) | {' | '.join(cells)} |")
    for part, label in [("part_looks_like_jws", "of which: the JWT shape test (`jose::looks_like_jws`, 800 bytes)"),
                        ("part_oidc_recall", "of which: the OIDC cache asked, a hit"),
                        ("part_oidc_recall_miss", "of which: the OIDC cache asked, a miss (another method's token)")]:
        fid = f"check_route/{part}"
        print(f"| {label} | {fmt(median_ns(fid))} ({a(allocs, fid)}) | | |")

    two = [(n, median_ns(f"check_two_threads/{n}")) for n in
           ["ours_api_key", "ours_oidc_rs256_cached", "ref_sha256_of_token"]]
    if any(t for _, t in two):
        print("\n### Two threads checking at once (wall time per check; 2x faster than one thread is perfect)\n")
        print("| check | per check, 2 threads |\n|---|---:|")
        for n, t in two:
            print(f"| {n} | {fmt(t)} |")

    print("\n### The whole request in-process (axum hello-world, `oneshot`; criterion median)\n")
    print("| variant | time per request | with-auth / no-auth | added by the middleware "
          "| allocations per request (of which building the request) |")
    print("|---|---:|---:|---:|---:|")
    base = median_ns("service_hello_world/no_auth")
    for v in ["no_auth", "ours_api_key", "ours_api_key_failure_limit", "ours_oidc_cached", "ours_oidc_cold",
              "ours_chain_oidc_cached", *PEERS]:
        t = median_ns(f"service_hello_world/{v}")
        added = None if t is None or base is None else t - base
        print(f"| {v} | {fmt(t)} | {ratio(t, base)} | {fmt(added) if v != 'no_auth' else ''} | "
              f"{a(allocs, f'service_hello_world/{v}')} ({a(allocs, f'service_request_build/{v}')}) |")

    if load and Path(load).exists():
        print("\n### Under wrk on loopback (benches/load.sh)\n")
        print("| variant | requests/s | p99 | requests/s vs no-auth | p99 vs no-auth "
              "| server CPU per request | added CPU per request | note |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for line in Path(load).read_text().splitlines():
            parts = line.split(None, 7)
            if (len(parts) >= 7 and re.match(r"^[a-z_0-9]+$", parts[0]) and not parts[0][0].isdigit()
                    and re.match(r"^[\d.]+$", parts[1])):
                note = parts[7] if len(parts) > 7 else ""
                added = f"{parts[6]} µs" if parts[0] != "no_auth" else ""
                print(f"| {parts[0]} | {parts[1]} | {parts[2]} ms | {parts[3]} | {parts[4]} "
                      f"| {parts[5]} µs | {added} | {note} |")


if __name__ == "__main__":
    main()
