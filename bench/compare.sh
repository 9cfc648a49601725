#!/usr/bin/env bash
# Measures caddy-sse and Nchan side by side on this machine, in one run:
#   bash bench/compare.sh            # all scenarios, 3 alternating rounds
#   ROUNDS=1 SCENARIOS="fanout" bash bench/compare.sh
#   SYSTEMS="caddy-sse caddy-redis" bash bench/compare.sh   # the Redis engine's overhead
#   SYSTEMS="caddy-sse caddy-mercure" SCENARIOS="fanout publish" bash bench/compare.sh
#     # sse_mercure against sse: the same hub, Mercure forms and tokens,
#     # half the subscribers presenting a subscriber token
#   SYSTEMS="caddy-sse reference" bash bench/compare.sh
#     # caddy-sse against this machine's limit: bench/reference, a bare
#     # epoll server with nothing but fan-out (docs/performance.md)
# Builds Caddy with the module and the load tool, installs Debian's nginx and
# libnginx-mod-nchan if missing, starts each server fresh on loopback for
# every run, alternates the systems, and writes bench/RESULTS.md and
# bench/latency.svg. Everything stays on 127.0.0.1 and stops by itself.
# caddy-sse runs with its default settings (bench/Caddyfile.bench), so the
# numbers are what a user gets. Every run reports subscribers dropped and
# deliveries lost; a run that drops or loses anything is reported and the
# comparison goes on (ssebench's exit status, below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SCENARIOS=${SCENARIOS:-"idle fanout-1k fanout-5k fanout sustained publish stream"}
SYSTEMS=${SYSTEMS:-"caddy-sse nchan caddy-redis"}
# The Redis engine runs the scenarios the issue compares it on.
REDIS_SCENARIOS=${REDIS_SCENARIOS:-"fanout-1k fanout-5k fanout sustained"}
OUT=bench/out
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" # 10,000 subscribers need 10,000 sockets on each side

echo "== building"
go build -o "$OUT/caddy" ./cmd/caddy
go build -o "$OUT/ssebench" ./cmd/ssebench
if [[ " $SYSTEMS " == *" reference "* ]]; then
	go build -o "$OUT/reference" ./bench/reference
fi
if [[ " $SYSTEMS " == *" nchan "* ]] && [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
	echo "== installing nginx and libnginx-mod-nchan"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
	systemctl stop nginx 2>/dev/null || pkill -x nginx || true
fi
if [[ " $SYSTEMS " == *" caddy-redis "* ]] && ! command -v redis-server >/dev/null; then
	echo "== installing redis-server"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	systemctl stop redis-server 2>/dev/null || true
fi

CADDY_PORT=18090
NCHAN_PORT=18091
CADDY2_PORT=18092
REFERENCE_PORT=18093
REDIS_PORT=18379
server_pid=""
server_pids="" # everything start_server started, to stop

start_server() { # system -> sets server_pid and pids (what to measure)
	case "$1" in
	caddy-sse | caddy-mercure) # one Caddy: the same hub through sse or sse_mercure
		SSE_BENCH_PORT=$CADDY_PORT SSE_BENCH_ADMIN_PORT=18099 \
			"$OUT/caddy" run --config bench/Caddyfile.bench --adapter caddyfile >"$OUT/caddy.log" 2>&1 &
		server_pid=$!
		server_pids=$server_pid
		wait_port $CADDY_PORT
		pids=$server_pid
		base="http://127.0.0.1:$CADDY_PORT"
		subs="$base/events?topic=bench"
		if [ "$1" = caddy-mercure ]; then
			subs="$base/.well-known/mercure?match=https://example.com/bench"
		fi
		;;
	caddy-redis)
		redis_dir=$(mktemp -d)
		redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$redis_dir" >"$OUT/redis.log" 2>&1 &
		local redis_pid=$!
		wait_port $REDIS_PORT
		SSE_BENCH_PORT=$CADDY_PORT SSE_BENCH_ADMIN_PORT=18099 SSE_BENCH_REDIS_PORT=$REDIS_PORT \
			"$OUT/caddy" run --config bench/Caddyfile.bench-redis --adapter caddyfile >"$OUT/caddy.log" 2>&1 &
		server_pid=$!
		SSE_BENCH_PORT=$CADDY2_PORT SSE_BENCH_ADMIN_PORT=18098 SSE_BENCH_REDIS_PORT=$REDIS_PORT \
			"$OUT/caddy" run --config bench/Caddyfile.bench-redis --adapter caddyfile >"$OUT/caddy2.log" 2>&1 &
		local second=$!
		server_pids="$server_pid $second $redis_pid"
		wait_port $CADDY_PORT
		wait_port $CADDY2_PORT
		wait_connected 18099
		wait_connected 18098
		pids="$server_pid,$second,$redis_pid"
		base="http://127.0.0.1:$CADDY_PORT"
		subs="$base/events?topic=bench,http://127.0.0.1:$CADDY2_PORT/events?topic=bench"
		;;
	reference) # the limit: its defaults match caddy-sse's (pending bytes, coalescing, heartbeat)
		"$OUT/reference" -listen 127.0.0.1:$REFERENCE_PORT >"$OUT/reference.log" 2>&1 &
		server_pid=$!
		server_pids=$server_pid
		wait_port $REFERENCE_PORT
		pids=$server_pid
		base="http://127.0.0.1:$REFERENCE_PORT"
		subs="$base/events?topic=bench"
		;;
	nchan)
		prefix=$(mktemp -d)
		sed -e "s#@PREFIX@#$prefix#g" -e "s#@PORT@#$NCHAN_PORT#g" bench/nchan.conf >"$prefix/nginx.conf"
		nginx -p "$prefix" -c "$prefix/nginx.conf" >"$OUT/nginx.log" 2>&1 &
		server_pid=$!
		wait_port $NCHAN_PORT
		pids=$(pgrep -P "$server_pid" | paste -sd, -)
		pids="$server_pid,$pids"
		server_pids=$server_pid
		base="http://127.0.0.1:$NCHAN_PORT"
		subs="$base/events?topic=bench"
		;;
	esac
}

stop_server() {
	for pid in $server_pids; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $server_pids; do
		wait "$pid" 2>/dev/null || true
	done
}

wait_connected() { # an instance's Redis engine is connected (bounded)
	for _ in $(seq 1 200); do
		curl -fsS "http://127.0.0.1:$1/sse/stats" 2>/dev/null | grep -q '"connected":true' && return 0
		sleep 0.05
	done
	echo "instance with admin port $1 did not connect to Redis" >&2
	return 1
}

wait_port() { # readiness: the port accepts connections (bounded)
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "server on port $1 did not start" >&2
	return 1
}

# scenario -> load tool arguments (without URLs)
args_for() {
	case "$1" in
	idle)      echo "-subs 10000 -rate 1 -duration 2s -connect-concurrency 500" ;;
	fanout)    echo "-subs 10000 -rate 1 -duration 10s -connect-concurrency 500" ;;
	sustained) echo "-subs 1000 -rate 500 -duration 10s" ;;
	publish)   echo "-subs 100 -rate 0 -duration 5s -publishers 8" ;;
	stream)    echo "-subs 10 -rate 0 -duration 5s -mode stream" ;;
	fanout-1k) echo "-subs 1000 -rate 1 -duration 10s" ;;
	fanout-5k) echo "-subs 5000 -rate 1 -duration 10s -connect-concurrency 500" ;;
	esac
}

results="$OUT/results.jsonl"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
	for scenario in $SCENARIOS; do
		for system in $SYSTEMS; do
			if [ "$system" = nchan ] && [ "$scenario" = stream ]; then
				continue # Nchan has no streaming HTTP publisher
			fi
			if [ "$system" = caddy-redis ] && [[ " $REDIS_SCENARIOS " != *" $scenario "* ]]; then
				continue
			fi
			if [ "$system" = caddy-mercure ] && [ "$scenario" = stream ]; then
				continue # Mercure publishes form POSTs only
			fi
			echo "== round $round: $scenario on $system"
			start_server "$system"
			pub="$base/publish?topic=bench"
			extra=()
			if [ "$system" = caddy-mercure ]; then
				pub="$base/.well-known/mercure"
				extra=(-mode mercure -mercure-key '!ChangeThisMercureHubJWTSecretKey!' -mercure-issuer https://localhost)
			fi
			# shellcheck disable=SC2046
			status=0
			"$OUT/ssebench" -json -label "$system/$scenario" \
				-sub "$subs" -pub "$pub" \
				-pid "$pids" $(args_for "$scenario") "${extra[@]}" >>"$results" || status=$?
			case $status in
			0) ;;
			3) echo "   (subscribers dropped, or deliveries lost, duplicated or out of order)" ;;
			4) echo "   (nothing was delivered)" ;;
			*) echo "   (the run failed: exit $status)" ;;
			esac
			tail -n 1 "$results" | cut -c1-240
			stop_server
		done
	done
done

"$OUT/ssebench" -summarize "$results" -machine "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)" \
	-markdown bench/RESULTS.md -svg bench/latency.svg -notes bench/NOTES.md
echo "== wrote bench/RESULTS.md and bench/latency.svg"
