#!/usr/bin/env python3
"""Spin setting cost curve: lwmq lat / raw-lat, 64 B, a pause before each
round trip, both sides with the same --spin-us. Prints p50 (ping's JSON)
and CPU of both processes (user+sys from wait4) over the run's wall time,
as % of one core."""
import json, os, subprocess, sys, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/lwmq"
CASES = [(1000, [0, 10, 50, 200, 1000, 2000], 2000), (10000, [0, 50, 1000, 10000, 20000], 400)]

def run(cmd, pause, spin, count, tag):
    addr = f"ipc://spincurve-{os.getpid()}-{tag}"
    common = ["64", str(count), "--pause-us", str(pause), "--spin-us", str(spin)]
    t0 = time.monotonic()
    pong = subprocess.Popen([BIN, cmd, "pong", addr] + common, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ping = subprocess.Popen([BIN, cmd, "ping", addr] + common + ["--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = ping.stdout.read()
    _, _, ru1 = os.wait4(ping.pid, 0)
    _, _, ru2 = os.wait4(pong.pid, 0)
    wall = time.monotonic() - t0
    cpu = ru1.ru_utime + ru1.ru_stime + ru2.ru_utime + ru2.ru_stime
    p50 = json.loads(out.decode().strip().splitlines()[-1])["p50_ns"]
    return p50 / 1000.0, 100.0 * cpu / wall

for pause, spins, count in CASES:
    for spin in spins:
        row = []
        for cmd in ("raw-lat", "lat"):
            p, c = run(cmd, pause, spin, count, f"{cmd}-{pause}-{spin}")
            row.append(f"{p:.1f} µs | {c:.1f} %")
        print(f"| {pause/1000:g} ms | {spin} µs | " + " | ".join(row) + " |", flush=True)
