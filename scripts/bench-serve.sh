#!/usr/bin/env bash
# `nudge serve` throughput, measured in one run beside `nudge run` over the
# same events and beside the broker's own rates (BENCHMARKS.md, "serve").
#
#   scripts/bench-serve.sh            (EVENTS=1000000 PROFILES=10000 by default)
#
# Prints: nudge run's rate; the broker's produce and consume rates; one
# `nudge serve` on a 1-partition topic (one partition worker); one process
# and two processes on a 4-partition topic. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
PROFILES=${PROFILES:-10000}
work=$(mktemp -d /tmp/nudge-bench-serve.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet --bin nudge --example gen_events --example kafka_load
nudge=target/release/nudge
load=target/release/examples/kafka_load
tansu=$(scripts/fetch-tansu.sh)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
broker=127.0.0.1:$port
"$tansu" broker --listener-url "tcp://$broker" --advertised-listener-url "tcp://$broker" \
  --storage-engine memory://tansu/ > "$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break; sleep 0.1; done

target/release/examples/gen_events --profiles "$PROFILES" --events "$EVENTS" --seed 7 > "$work/events.ndjson"
n=$(grep -c . "$work/events.ndjson")
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1/($3-$2):,.0f}')"; }

t0=$(now)
"$nudge" run --policy examples/retail --events "$work/events.ndjson" > /dev/null 2> /dev/null
t1=$(now)
echo "nudge run                         $(rate "$n" "$t0" "$t1") events/s"
t0=$(now)
"$nudge" run --policy examples/retail --events "$work/events.ndjson" --state "$work/run-state" > "$work/run-state.out" 2> /dev/null
t1=$(now)
echo "nudge run --state                 $(rate "$n" "$t0" "$t1") events/s"

"$load" produce "$broker" one 1 "$work/events.ndjson" | sed 's/^/broker: /'
"$load" consume "$broker" one 1 "$n" | sed 's/^/broker: /'

# Starts `nudge serve` on TOPIC in GROUP; prints "pid metrics-address".
serve() {
  local topic=$1 group=$2 mport
  mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$nudge" serve --policy examples/retail --kafka "$broker" --topic "$topic" --group "$group" \
    --out-topic "$topic-decisions" --state "$work/$group-$mport" --lag 36500d \
    --metrics "127.0.0.1:$mport" --kafka-config session.timeout.ms=3000 \
    --kafka-config heartbeat.interval.ms=500 > "$work/$group-$mport.log" 2>&1 &
  echo "$! 127.0.0.1:$mport"
}
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
# Waits until the processes' partitions_assigned add up to $1.
held() {
  local want=$1; shift
  for _ in $(seq 600); do
    local sum=0
    for a in "$@"; do sum=$((sum + $(metric "$a" nudge_partitions_assigned || echo 0))); done
    [ "$sum" -ge "$want" ] && return 0
    sleep 0.1
  done
  echo "partitions not assigned within 60 s" >&2; exit 1
}
# Waits until the processes' events_total add up to $1.
done_at() {
  local want=$1; shift
  for _ in $(seq 6000); do
    local sum=0
    for a in "$@"; do sum=$((sum + $(metric "$a" nudge_events_total || echo 0))); done
    [ "$sum" -ge "$want" ] && { now; return 0; }
    sleep 0.05
  done
  echo "not done within 300 s" >&2; exit 1
}

# One partition worker over the pre-loaded topic, from assignment to the end.
read -r pid m < <(serve one g-one); pids+=("$pid")
held 1 "$m"; t0=$(now); t1=$(done_at "$n" "$m")
echo "serve, 1 partition, 1 process     $(rate "$n" "$t0" "$t1") events/s"
kill -TERM "$pid"

# A 4-partition topic loaded while the processes hold their partitions.
for procs in 1 2; do
  topic="four$procs"
  addrs=()
  "$load" produce "$broker" "$topic-in" 4 /dev/null > /dev/null   # the topic, empty
  for _ in $(seq "$procs"); do read -r pid m < <(serve "$topic-in" "g-$topic"); pids+=("$pid"); addrs+=("$m"); done
  held 4 "${addrs[@]}"
  [ "$procs" = 2 ] && for a in "${addrs[@]}"; do
    for _ in $(seq 600); do [ "$(metric "$a" nudge_partitions_assigned)" = 2 ] && break; sleep 0.1; done
  done
  t0=$(now)
  "$load" produce "$broker" "$topic-in" 4 "$work/events.ndjson" | sed "s/^/broker ($topic): /"
  t1=$(done_at "$n" "${addrs[@]}")
  echo "serve, 4 partitions, $procs process(es) $(rate "$n" "$t0" "$t1") events/s"
done
