#!/usr/bin/env bash
# A real Flower federation with Stamen SuperNodes in it: a Flower 1.23
# SuperLink, F Flower SuperNodes (Python ClientApps) and S Stamen SuperNodes
# (`stamen supernode --protocol flower`, the quickstart's C++ ClientApp), and
# `flwr run` of Flower's PyTorch template on Fashion-MNIST (the same Net as
# Stamen's quickstart). CI cannot install Flower, so this runs by hand:
#
#   tests/interop/flower_mixed_run.sh PEER [--flower F] [--stamen S] [--rounds R]
#       [--kill-stamen-in-round K] [--same-partitions] [--tls] [--out DIR] [--port-base P]
#
# PEER is a Flower 1.23 install made by ../shared/flower-1.23/install (its
# venv/ and app/). Defaults: 5 Flower and 5 Stamen nodes, 3 rounds, ports
# 19091.., partitions 0..F-1 for Flower's nodes and F..F+S-1 for Stamen's
# (--same-partitions: 0..S-1 for Stamen's too, to compare the two on the
# same data; --tls: the SuperLink with a certificate from a throwaway CA
# and every node and `flwr run` with --root-certificates). It waits for events (log lines, nodes online), never for a fixed
# time, and prints a JSON summary: per round the results and failures Flower
# counted for train and evaluate, the final eval_acc and eval_loss, the
# seconds each kind of node took per train and per evaluate message (from
# "Received" to "Sent" in its log, which every line is timestamped in; a
# Flower node's includes starting its flwr-clientapp process, as Flower
# does for every message), and the peak memory of one Stamen SuperNode and of one
# Flower SuperNode with its ClientApp processes. Logs stay in --out.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${STAMEN_BUILD_DIR:-$root/build}"
peer="${1:?usage: $0 PEER [options]}"; shift
flower=5 stamen=5 rounds=3 kill_round=0 out="" base=19091 same=0 tls=0
while [ $# -gt 0 ]; do
  case "$1" in
    --flower) flower=$2; shift 2 ;;
    --stamen) stamen=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --kill-stamen-in-round) kill_round=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --port-base) base=$2; shift 2 ;;
    --same-partitions) same=1; shift ;;
    --tls) tls=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$peer/venv/bin/flower-superlink" ] || { echo "no Flower install in $peer (see ../shared/flower-1.23-from-debian.md)" >&2; exit 2; }
[ -x "$build/bin/stamen" ] || { echo "no $build/bin/stamen: build first (cmake/do build)" >&2; exit 2; }
out="${out:-$(mktemp -d /tmp/stamen-flower-interop.XXXXXX)}"
mkdir -p "$out/home"
total=$((flower + stamen))

export FLWR_TELEMETRY_ENABLED=0 HOME="$out/home" PATH="$peer/venv/bin:$PATH"
pids=()
cleanup() {
  exec 2>/dev/null  # no "Killed" notices for what is killed on purpose
  for p in "${pids[@]}"; do kill -9 "$p" || true; done
  pkill -9 -f "flwr-(serverapp|clientapp).*$base" || true
}
# Each line of a node's log with the time it was written (seconds since the epoch).
stamp() { python3 -u -c 'import sys, time
for line in sys.stdin: sys.stdout.write("%.3f %s" % (time.time(), line))'; }
trap cleanup EXIT

# Waits until FILE has a line matching PATTERN (grep -E), up to SECONDS.
wait_log() {
  local file=$1 pattern=$2 limit=${3:-300} t=0
  until grep -qE "$pattern" "$file" 2>/dev/null; do
    sleep 0.2; t=$((t + 1))
    if [ $t -gt $((limit * 5)) ]; then echo "timed out waiting for '$pattern' in $file" >&2; tail -20 "$file" >&2; exit 1; fi
  done
}

serverappio=127.0.0.1:$base fleet=127.0.0.1:$((base + 1)) control=127.0.0.1:$((base + 2))
link_security=(--insecure) node_security=(--insecure)
if [ "$tls" = 1 ]; then
  # A throwaway CA and a SuperLink certificate for 127.0.0.1.
  pki="$out/pki"; mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/ca.key" \
    -out "$pki/ca.pem" -days 2 -subj /CN=interop-ca 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/server.key" \
    -out "$pki/server.csr" -subj /CN=superlink -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null
  openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -copy_extensions copy -out "$pki/server.pem" -days 2 2>/dev/null
  link_security=(--ssl-ca-certfile "$pki/ca.pem" --ssl-certfile "$pki/server.pem" --ssl-keyfile "$pki/server.key")
  node_security=(--root-certificates "$pki/ca.pem")
fi
FLWR_HOME="$out/superlink" flower-superlink "${link_security[@]}" --serverappio-api-address "$serverappio" \
  --fleet-api-address "$fleet" --control-api-address "$control" > "$out/superlink.log" 2>&1 &
pids+=($!)
wait_log "$out/superlink.log" "Starting Flower ServerAppIo API|Flower Deployment Runtime: Starting Control API" 120

# Partitions 0..F-1 go to Flower's nodes, F..F+S-1 to Stamen's.
for i in $(seq 0 $((flower - 1))); do
  FLWR_HOME="$out/flower-node-$i" flower-supernode "${node_security[@]}" --superlink "$fleet" \
    --clientappio-api-address "127.0.0.1:$((base + 10 + i))" \
    --node-config "partition-id=$i num-partitions=$total" > >(stamp > "$out/flower-node-$i.log") 2>&1 &
  pids+=($!)
  echo "$!" > "$out/flower-node-$i.pid"
done
stamen_pids=()
for i in $(seq "$flower" $((total - 1))); do
  part=$i
  [ "$same" = 1 ] && part=$((i - flower))
  "$build/bin/stamen" supernode --protocol flower --superlink "$fleet" "${node_security[@]}" --app "$root/apps/quickstart" \
    --node-config "partition-id=$part num-partitions=$total" > >(stamp > "$out/stamen-node-$i.log") 2>&1 &
  pids+=($!)
  stamen_pids+=($!)
  echo "$!" > "$out/stamen-node-$i.pid"
done

# The app: Flower's template on Fashion-MNIST, pointed at this SuperLink.
cp -r "$peer/app" "$out/app"
sed -i "s/^address = .*/address = \"$control\"/" "$out/app/pyproject.toml"
sed -i "s/^num-server-rounds = .*/num-server-rounds = $rounds/" "$out/app/pyproject.toml"
[ "$tls" = 1 ] && sed -i "s|^insecure = true|root-certificates = \"$out/pki/ca.pem\"|" "$out/app/pyproject.toml"

# Every node online before the run samples: FedAvg samples from whoever is there.
for t in $(seq 1 600); do
  online=$(flwr supernode ls "$out/app" local-deployment --format json 2>/dev/null |
    python3 -c 'import json,sys; print(sum(1 for n in json.load(sys.stdin).get("nodes", []) if n.get("status") == "online"))' 2>/dev/null || echo 0)
  [ "$online" -ge "$total" ] && break
  sleep 0.5
done
[ "$online" -ge "$total" ] || { echo "only $online of $total nodes online" >&2; exit 1; }
echo "all $total nodes online" >&2

start=$(date +%s.%N)
flwr run "$out/app" local-deployment --stream > "$out/run.log" 2>&1 &
run_pid=$!
killed=""
if [ "$kill_round" -gt 0 ]; then
  wait_log "$out/run.log" "\[ROUND $kill_round/" 1200
  # A Stamen node that is about to train (or training) in that round.
  wait_log "$out/run.log" "configure_train: Sampled" 60
  kill -9 "${stamen_pids[0]}"
  killed="stamen-node-$flower"
  echo "killed $killed (pid ${stamen_pids[0]}) in round $kill_round" >&2
fi
# Peak memory while the run goes: one Stamen node, one Flower node with its ClientApp processes.
peak_stamen=0 peak_flower=0
flower_tree_rss() {
  local p=$1 sum=0
  for q in $p $(pgrep -P "$p" 2>/dev/null) $(pgrep -f "flwr-clientapp.*$((base + 10))" 2>/dev/null); do
    v=$(awk '/VmRSS/{print $2}' /proc/$q/status 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo $sum
}
probe=0
[ ${#stamen_pids[@]} -gt 0 ] && probe="${stamen_pids[-1]}"
while kill -0 "$run_pid" 2>/dev/null; do
  s=$(awk '/VmHWM/{print $2}' /proc/$probe/status 2>/dev/null || echo 0)
  s=${s:-0}
  [ "$s" -gt "$peak_stamen" ] && peak_stamen=$s
  f=0
  [ "$flower" -gt 0 ] && f=$(flower_tree_rss "$(cat "$out/flower-node-0.pid")")
  [ "$f" -gt "$peak_flower" ] && peak_flower=$f
  sleep 0.5
done
wait "$run_pid" || true
end=$(date +%s.%N)

python3 - "$out" "$rounds" "$flower" "$stamen" "$killed" "$start" "$end" "$peak_stamen" "$peak_flower" <<'EOF'
import json, re, sys
out, rounds, flower, stamen, killed, start, end, ps, pf = sys.argv[1:]
log = open(f"{out}/run.log", errors="replace").read()
per_round = []
for r in range(1, int(rounds) + 1):
    part = log.split(f"[ROUND {r}/")[1].split("[ROUND ")[0] if f"[ROUND {r}/" in log else ""
    def counts(phase):
        m = re.search(rf"aggregate_{phase}: Received (\d+) results and (\d+) failures", part)
        return {"results": int(m.group(1)), "failures": int(m.group(2))} if m else None
    errors = re.findall(r"Received error in reply from node (\d+): (.*)", part)
    per_round.append({"round": r, "train": counts("train"), "evaluate": counts("evaluate"),
                      "errors": [{"node": int(n), "reason": why.strip()} for n, why in errors]})
final = {}
m = re.findall(r"'eval_acc': ([0-9.e-]+)", log)
if m: final["eval_acc"] = float(m[-1])
m = re.findall(r"'eval_loss': ([0-9.e-]+)", log)
if m: final["eval_loss"] = float(m[-1])
# Seconds from "Received: <type>" to the next "Sent" line, per kind of node.
def handling(kind, first, count):
    times = {"train": [], "evaluate": []}
    replies = 0
    for i in range(first, first + count):
        try:
            lines = open(f"{out}/{kind}-node-{i}.log", errors="replace").read().splitlines()
        except FileNotFoundError:
            continue
        pending = None
        for line in lines:
            stamp, _, text = line.partition(" ")
            m = re.search(r"Received: (train|evaluate) message", text)
            if m:
                pending = (m.group(1), float(stamp))
            elif pending and ("Sent successfully" in text or "] Sent reply" in text or "] Sent error" in text):
                times[pending[0]].append(float(stamp) - pending[1])
                replies += 1
                pending = None
    def stats(xs):
        xs = sorted(xs)
        return {"n": len(xs), "median_s": round(xs[len(xs) // 2], 3) if xs else None}
    return {"train": stats(times["train"]), "evaluate": stats(times["evaluate"]), "replies": replies}
f, s_ = int(flower), int(stamen)
per_node = {"flower": handling("flower", 0, f), "stamen": handling("stamen", f, s_)}
print(json.dumps({"flower_nodes": int(flower), "stamen_nodes": int(stamen), "rounds": per_round,
                  "final": final, "killed": killed or None, "per_message": per_node,
                  "seconds": round(float(end) - float(start), 1),
                  "peak_rss_mb": {"stamen_supernode": round(int(ps) / 1024, 1),
                                  "flower_supernode_with_clientapps": round(int(pf) / 1024, 1)},
                  "logs": out}, indent=1))
EOF
