#!/usr/bin/env bash
# Builds Mercure's own hub (Caddy with Mercure's module), once, as the black-box
# oracle of the differential test (integration/mercure_oracle_test.go). Nothing
# of Mercure is linked into the product: this directory is a module of its own.
#
#   bash oracle/build.sh 0.24.2   # Mercure 0.24.2 from the Go module proxy (oracle/go.mod)
#   bash oracle/build.sh 1.0      # Mercure 1.0 from a snapshot of dunglas/mercure
#
# 1.0 is not on the proxy. It is built from the commit in MERCURE_REV (default:
# the spec's commit below) of the repository in MERCURE_REPO (a local clone or
# mirror; default: the mirror on the project's machine, else a fresh clone of
# https://github.com/dunglas/mercure), with the deprecated_topic and
# deprecated_claim tags that its docs/UPGRADE.md names for compatibility mode.
#
# Output: oracle/bin/mercure-<version> and mercure-<version>.commit (what it
# was built from). An existing binary is kept (FORCE=1 rebuilds).
set -euo pipefail
cd "$(dirname "$0")"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

version=${1:-0.24.2}
# The spec's commit (dunglas/mercure, 2026-08-17, v1.0.0-alpha.3).
default_rev=192faaaf9f0bd37c677a47aa6adcf69b4fb504be
# Caddy's x509roots/fallback pin in Mercure's go.mod is a version the proxy
# no longer serves; this one it does (a replace, so that no version of the
# graph asks for the old one).
fallback=golang.org/x/crypto/x509roots/fallback@v0.0.0-20261030153154-30a33513ff6d

mkdir -p bin
out=$PWD/bin/mercure-$version
if [ -x "$out" ] && [ -z "${FORCE:-}" ]; then
	echo "build: $out exists ($(cat "$out.commit" 2>/dev/null)); FORCE=1 rebuilds"
	exit 0
fi

case $version in
0.24.2)
	go build -o "$out" ./cmd/mercure-caddy
	echo "v0.24.2 (github.com/dunglas/mercure/caddy, Go module proxy)" >"$out.commit"
	;;
1.0)
	repo=${MERCURE_REPO:-}
	tmp=$(mktemp -d)
	trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
	if [ -z "$repo" ]; then
		if [ -d /work/.mirror/dunglas+mercure/repo ]; then
			repo=/work/.mirror/dunglas+mercure/repo
		else
			git clone --quiet https://github.com/dunglas/mercure "$tmp/clone"
			repo=$tmp/clone
		fi
	fi
	commit=$(git -C "$repo" rev-parse "${MERCURE_REV:-$default_rev}^{commit}")
	mkdir "$tmp/src"
	git -C "$repo" archive "$commit" | tar -x -C "$tmp/src"
	# The main package is caddy/mercure (found with go list, not by reading
	# Mercure's code).
	(
		cd "$tmp/src/caddy"
		go mod edit -replace="${fallback%@*}=$fallback"
		go build -mod=mod -tags deprecated_topic,deprecated_claim -o "$out" ./mercure
	)
	echo "$commit" >"$out.commit"
	;;
*)
	echo "build: unknown version $version (0.24.2 or 1.0)" >&2
	exit 2
	;;
esac
echo "build: $out ($(cat "$out.commit"))"
