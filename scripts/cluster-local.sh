#!/usr/bin/env bash
# Runs a whole Beacon cluster on this machine: 3 etcd members and 3 Beacon servers on loopback.
#
#   scripts/cluster-local.sh start     # start everything in the background, wait until healthy
#   scripts/cluster-local.sh status    # members, leader, and each server's view
#   scripts/cluster-local.sh stop      # stop what `start` started (by the pids it recorded)
#
# Ports (override with the environment): etcd clients CLUSTER_ETCD_PORT, +10000, +20000 (2379,
# 12379, 22379) and peers one above each; Beacon HTTP CLUSTER_HTTP_PORT.. +2 (8500-8502), DNS CLUSTER_DNS_PORT.. +2
# (8600-8602). Data and logs go to CLUSTER_DIR (./beacon-cluster). Needs `etcd` (Debian:
# etcd-server) and a built Beacon (`npm run build`). See docs/clustering.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${CLUSTER_DIR:-./beacon-cluster}
CLUSTER_ETCD_PORT=${CLUSTER_ETCD_PORT:-2379}
CLUSTER_HTTP_PORT=${CLUSTER_HTTP_PORT:-8500}
CLUSTER_DNS_PORT=${CLUSTER_DNS_PORT:-8600}
BEACON="node packages/cli/bin/beacon.js"
N=3

etcd_client() { echo $((CLUSTER_ETCD_PORT + ($1 - 1) * 10000)); }
etcd_peer() { echo $((CLUSTER_ETCD_PORT + 1 + ($1 - 1) * 10000)); }

start() {
  command -v etcd >/dev/null || { echo "etcd is not installed (Debian: apt-get install etcd-server)" >&2; exit 1; }
  [ -f packages/cli/dist/main.js ] || { echo "Beacon is not built: run npm run build" >&2; exit 1; }
  if [ -f "$DIR/pids" ]; then echo "already started ($DIR/pids); run $0 stop first" >&2; exit 1; fi
  mkdir -p "$DIR"
  local cluster="" endpoints=""
  for i in $(seq 1 $N); do
    cluster+="${cluster:+,}etcd-$i=http://127.0.0.1:$(etcd_peer "$i")"
    endpoints+="${endpoints:+,}127.0.0.1:$(etcd_client "$i")"
  done
  local state=new
  [ -d "$DIR/etcd-1" ] && state=existing
  for i in $(seq 1 $N); do
    etcd --name "etcd-$i" --data-dir "$DIR/etcd-$i" \
      --listen-client-urls "http://127.0.0.1:$(etcd_client "$i")" --advertise-client-urls "http://127.0.0.1:$(etcd_client "$i")" \
      --listen-peer-urls "http://127.0.0.1:$(etcd_peer "$i")" --initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer "$i")" \
      --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token beacon-local \
      --heartbeat-interval 200 --election-timeout 1000 --auto-compaction-mode periodic --auto-compaction-retention 1h \
      --logger zap --log-level warn \
      >>"$DIR/etcd-$i.log" 2>&1 &
    echo "$! etcd-$i" >>"$DIR/pids"
  done
  local healthy=""
  for _ in $(seq 1 100); do
    healthy=1
    for i in $(seq 1 $N); do
      curl -fsS "http://127.0.0.1:$(etcd_client "$i")/health" 2>/dev/null | grep -q '"true"' || healthy=""
    done
    [ -n "$healthy" ] && break
    sleep 0.2
  done
  if [ -z "$healthy" ]; then
    echo "etcd did not become healthy; see $DIR/etcd-*.log" >&2
    stop
    exit 1
  fi
  for i in $(seq 1 $N); do
    $BEACON server --store "etcd://$endpoints" --node "beacon-$i" \
      --http-addr "127.0.0.1:$((CLUSTER_HTTP_PORT + i - 1))" --dns-addr "127.0.0.1:$((CLUSTER_DNS_PORT + i - 1))" \
      >>"$DIR/beacon-$i.log" 2>&1 &
    echo "$! beacon-$i" >>"$DIR/pids"
  done
  local failed=""
  for i in $(seq 1 $N); do
    local up="" pid
    pid=$(awk -v n="beacon-$i" '$2 == n { print $1 }' "$DIR/pids")
    for _ in $(seq 1 100); do
      if curl -fsS "http://127.0.0.1:$((CLUSTER_HTTP_PORT + i - 1))/api/v1/status" >/dev/null 2>&1; then up=1; break; fi
      # A server that exited (a busy port, etcd refusing it) will not come up: stop waiting for it.
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if [ -z "$up" ]; then
      echo "beacon-$i did not start; the end of $DIR/beacon-$i.log:" >&2
      tail -n 5 "$DIR/beacon-$i.log" >&2
      failed=1
    fi
  done
  if [ -n "$failed" ]; then
    # Half a cluster is not what was asked for: stop what did start and say so with the exit status.
    echo "cluster not started; stopping what did start" >&2
    stop >&2
    exit 1
  fi
  echo "etcd:   $endpoints"
  echo "beacon: $(for i in $(seq 1 $N); do printf 'http://127.0.0.1:%s ' $((CLUSTER_HTTP_PORT + i - 1)); done)"
  echo "logs:   $DIR/*.log"
  status
}

status() {
  for i in $(seq 1 $N); do
    local url="http://127.0.0.1:$((CLUSTER_HTTP_PORT + i - 1))"
    printf 'beacon-%s %s: ' "$i" "$url"
    curl -fsS "$url/api/v1/cluster" 2>/dev/null || printf 'down'
    echo
  done
}

stop() {
  [ -f "$DIR/pids" ] || { echo "nothing recorded in $DIR/pids"; return 0; }
  # Beacon servers first (they leave the cluster cleanly), then etcd.
  tac "$DIR/pids" | while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" && echo "stopped $name ($pid)"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  rm -f "$DIR/pids"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
