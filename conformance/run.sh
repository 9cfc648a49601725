#!/usr/bin/env bash
# Runs Mercure's own conformance suite (Playwright, Chromium) against
# sse_mercure served by this repository's Caddy, and fails unless every case
# ran and passed for a reason.
#
#   bash conformance/run.sh                  # 0.24.2's suite, from the Go module proxy (CI)
#   bash conformance/run.sh /path/to/conformance-tests   # another copy, e.g. 1.0's
#   MERCURE_CONFORMANCE_DIR=/path/to/conformance-tests bash conformance/run.sh
#
# The suite is Mercure's (AGPL) and is never copied here: it runs from where
# it is. 0.24.2's comes from the Go module cache (`go mod download`); 1.0's
# is not on the proxy, so give a checkout's conformance-tests/ folder.
#
# The mode follows the suite's token: an RFC 9068 token (typ at+jwt) is
# 1.0's, run against modern mode (issuer https://localhost, audience
# https://localhost/.well-known/mercure); any other is 0.x's, run against
# `protocol_version_compatibility 8`. MERCURE_CONFORMANCE_MODE=modern|compat
# overrides. Both are signed with the secret in Mercure's documentation,
# which sse_mercure refuses as a key (anyone can sign with it): resign.mjs
# checks that, signs the same header and claims with a random secret, and
# Caddy swaps the one for the other at the door (request_header), so the
# suite runs unchanged and the hub sees exactly the suite's claims.
#
# Steps: build Caddy (or use $CADDY), serve the hub over TLS (tls internal)
# on a free loopback port as https://localhost:<port>, check with the suite's
# own token that publishing works (sanity.mjs: otherwise the "not received"
# cases would pass vacuously), run the suite (playwright.config.ts), then
# check that every case ran and passed and that every publish the browser
# sent was accepted (verify.mjs). Caddy is stopped on exit.
#
# Needs: go, node >= 20 with npm, chromium (CHROMIUM=/usr/bin/chromium by
# default; apt-get install chromium). Other variables:
#   CADDY=/path/to/caddy        skip the build
#   CONFORMANCE_OUT=dir         keep the report, logs and Caddyfile there
#   CONFORMANCE_KEEP_GOING=1    run the suite even when the sanity check
#                               fails (to see which cases fail); still exits 1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

version=v0.24.2

for prog in go node npm; do
	command -v "$prog" >/dev/null || { echo "conformance: $prog is not on PATH" >&2; exit 1; }
done
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
	{ echo "conformance: Playwright needs Node.js 20 or newer; this is $(node --version)" >&2; exit 1; }
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "conformance: no Chromium at $CHROMIUM (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; }

work=$(mktemp -d)
out=${CONFORMANCE_OUT:-$work/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
caddy_pid=
cleanup() {
	if [ -n "$caddy_pid" ]; then
		kill "$caddy_pid" 2>/dev/null || true
		wait "$caddy_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# The suite.
suite=${1:-${MERCURE_CONFORMANCE_DIR:-}}
if [ -z "$suite" ]; then
	echo "conformance: fetching Mercure $version's suite from the Go module proxy"
	mkdir "$work/mod"
	dir=$(cd "$work/mod" && go mod init conformance.invalid >/dev/null 2>&1 &&
		go mod download -json "github.com/dunglas/mercure@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] || { echo "conformance: go mod download github.com/dunglas/mercure@$version gave no directory" >&2; exit 1; }
	suite=$dir/conformance-tests
fi
suite=$(cd "$suite" && pwd)
spec=$suite/mercure.spec.ts
[ -f "$spec" ] || { echo "conformance: no mercure.spec.ts in $suite" >&2; exit 1; }
export MERCURE_CONFORMANCE_DIR=$suite

# The suite's token, read from the suite: it must be exactly one.
mapfile -t tokens < <(grep -o 'Bearer ey[A-Za-z0-9_.-]*' "$spec" | sort -u | sed 's/^Bearer //')
[ "${#tokens[@]}" -eq 1 ] || { echo "conformance: want exactly one token in $spec, found ${#tokens[@]}" >&2; exit 1; }
token=${tokens[0]}
typ=$(node -e 'const h = JSON.parse(Buffer.from(process.argv[1].split(".")[0], "base64url")); console.log(h.typ ?? "")' "$token")
mode=${MERCURE_CONFORMANCE_MODE:-$([ "$typ" = "at+jwt" ] && echo modern || echo compat)}
case $mode in
modern) protocol='issuer https://localhost
		audience https://localhost/.well-known/mercure' ;;
compat) protocol='protocol_version_compatibility 8' ;;
*) echo "conformance: MERCURE_CONFORMANCE_MODE must be modern or compat" >&2; exit 1 ;;
esac
echo "conformance: suite $suite, $mode mode (token typ: ${typ:-none})"
read -r key resigned < <(node "$here/resign.mjs" "$token")
[ -n "${resigned:-}" ] || exit 1

# Our npm dependencies (Playwright, without its browser downloads).
if [ ! -d "$here/node_modules/@playwright/test" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	(cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# Our Caddy.
if [ -z "${CADDY:-}" ]; then
	echo "conformance: building Caddy (./cmd/caddy)"
	(cd "$repo" && go build -o "$work/caddy" ./cmd/caddy)
	CADDY=$work/caddy
fi

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
hub=https://localhost:$port/.well-known/mercure
cat >"$out/Caddyfile" <<EOF
{
	admin off
	persist_config off
	local_certs
	skip_install_trust
	auto_https disable_redirects
	storage file_system "$work/storage"
}

https://localhost:$port {
	bind 127.0.0.1
	tls internal
	log {
		output file "$out/access.log"
		format json
	}
	# The suite's token, re-signed with this run's secret (resign.mjs).
	request_header Authorization "$token" "$resigned"
	sse_mercure /.well-known/mercure {
		publisher_jwt "$key"
		subscriber_jwt "$key"
		anonymous
		$protocol
	}
	respond "Mercure conformance run: the hub is at /.well-known/mercure" 200
}
EOF
: >"$out/access.log"
"$CADDY" run --adapter caddyfile --config "$out/Caddyfile" >"$out/caddy.log" 2>&1 &
caddy_pid=$!
echo "conformance: Caddy (pid $caddy_pid) serves $hub"

# Node checks the hub's certificate against Caddy's own root (tls internal),
# created before Caddy listens; sanity.mjs waits until it does.
root=$work/storage/pki/authorities/local/root.crt
for _ in $(seq 300); do
	[ -s "$root" ] && break
	kill -0 "$caddy_pid" 2>/dev/null || { cat "$out/caddy.log" >&2; echo "conformance: Caddy exited" >&2; exit 1; }
	sleep 0.1
done
[ -s "$root" ] || { echo "conformance: Caddy made no root certificate at $root" >&2; exit 1; }

status=0
if ! CADDY_PID=$caddy_pid NODE_EXTRA_CA_CERTS=$root node "$here/sanity.mjs" "$hub" "$mode" "$token"; then
	status=1
	if [ "${CONFORMANCE_KEEP_GOING:-}" != 1 ]; then
		echo "conformance: the hub refuses what the suite needs; not running the suite (CONFORMANCE_KEEP_GOING=1 runs it anyway)" >&2
		tail -n 20 "$out/caddy.log" >&2
		exit 1
	fi
fi

# The suite, with our configuration; its `import "@playwright/test"` must
# find our copy (it lives outside this tree).
echo "conformance: running the suite"
export BASE_URL=$hub CONFORMANCE_OUT=$out NODE_PATH=$here/node_modules CUSTOM_ID=1
(cd "$here" && npx --no-install playwright test --config "$here/playwright.config.ts") || status=1
node "$here/verify.mjs" "$out/report.json" "$out/access.log" || status=1
if [ "$status" -ne 0 ]; then
	echo "conformance: FAILED ($mode mode; report, Caddyfile and logs in $out)" >&2
	[ -n "${CONFORMANCE_OUT:-}" ] || echo "conformance: set CONFORMANCE_OUT=dir to keep them" >&2
	exit 1
fi
echo "conformance: Mercure's suite passes against sse_mercure ($mode mode)"
