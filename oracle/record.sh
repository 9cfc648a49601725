#!/usr/bin/env bash
# Re-records the golden transcripts of the differential test: Mercure's own
# answers to the table in integration/mercure_oracle_table_test.go.
#
#   bash oracle/record.sh            # Mercure 1.0 -> testdata/mercure-oracle/1.0
#   bash oracle/record.sh 0.24.2     # Mercure 0.24.2 -> testdata/mercure-oracle/0.24.2 (reference only: CI runs it live)
#   MERCURE_REV=<commit> FORCE=1 bash oracle/record.sh   # when the spec moves
#
# Builds the oracle first if needed (oracle/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-1.0}
bash oracle/build.sh "$version"
MERCURE_ORACLE_RECORD=$version go test -count=1 -run '^TestMercureOracleRecord$' ./integration/
echo "record: testdata/mercure-oracle/$version ($(cat "oracle/bin/mercure-$version.commit"))"
