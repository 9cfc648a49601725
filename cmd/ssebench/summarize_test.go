package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The publish scenario's table shows, per system, what publishers and
// subscribers got, and the delivered rate against Nchan's.
func TestSummarizePublishTable(t *testing.T) {
	runs := []report{
		{Label: "caddy-sse/publish", Subscribers: 100, Dropped: 100, Expected: 1000, Delivered: 400, Lost: 600,
			AcceptedPerSec: 12000, RejectedByStatus: map[string]int64{"503": 7}, PublishP50ms: 0.5, PublishP99ms: 4, DeliveredPerSec: 1.2e6},
		{Label: "nchan/publish", Subscribers: 100, Expected: 500, Delivered: 500, AcceptedPerSec: 2000, PublishP99ms: 9, DeliveredPerSec: 2e5},
		{Label: "caddy-sse/fanout", Subscribers: 10, Expected: 50, Delivered: 49, Lost: 1, Duplicated: 2, OutOfOrder: 3},
	}
	out := summarizeRuns(t, runs)
	for _, want := range []string{
		"| system | runs | POSTs/s accepted | POSTs rejected | POST p50 (ms) | POST p99 (ms) | subscribers dropped | deliveries expected | delivered | lost | duplicated | out of order | deliveries/s | deliveries/s ÷ nchan |",
		"| caddy-sse | 1 | 12000 | 503×7 | 0.50 | 4.00 | 100 of 100 | 1000 | 400 | 600 | 0 | 0 | 1200000 | 6.00 |",
		"| nchan | 1 | 2000 | 0 | 0.00 | 9.00 | 0 of 100 | 500 | 500 | 0 | 0 | 0 | 200000 | 1.00 |",
		"| caddy-sse/fanout | 1 | 0 of 10 | 50 | 49 | 1 | 2 | 3 | 0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks\n%s\n---\n%s", want, out)
		}
	}
}

// The reference (bench/reference) gets a column of its own and a ratio
// column for every other system, whatever order the systems ran in.
func TestRatioPairsAgainstTheReference(t *testing.T) {
	for _, tc := range []struct {
		systems []string
		want    [][2]string
	}{
		{[]string{"caddy-sse", "nchan"}, [][2]string{{"caddy-sse", "nchan"}}},
		{[]string{"caddy-sse", "reference"}, [][2]string{{"caddy-sse", "reference"}}},
		{[]string{"reference", "caddy-sse"}, [][2]string{{"caddy-sse", "reference"}}},
		{[]string{"caddy-sse", "nchan", "caddy-redis", "reference"}, [][2]string{
			{"caddy-sse", "nchan"}, {"caddy-redis", "caddy-sse"},
			{"caddy-sse", "reference"}, {"nchan", "reference"}, {"caddy-redis", "reference"}}},
	} {
		if got := ratioPairs(tc.systems); !slices.Equal(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.systems, got, tc.want)
		}
	}
	out := summarizeRuns(t, []report{
		{Label: "caddy-sse/sustained", DeliveredPerSec: 400000, LatencyP99ms: 60},
		{Label: "reference/sustained", DeliveredPerSec: 500000, LatencyP99ms: 20},
	})
	for _, want := range []string{
		"| scenario | caddy-sse | reference | caddy-sse ÷ reference |",
		"| sustained: deliveries/s (500k offered) | 400000 (1) | 500000 (1) | 0.80 |",
		"| sustained: p99 latency (ms) | 60.0 (1) | 20.0 (1) | 3.00 |",
		"- reference: `bench/reference`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks\n%s\n---\n%s", want, out)
		}
	}
}

// summarizeRuns writes runs as the load tool's JSON lines, summarizes them
// as compare.sh does, and returns the report.
func summarizeRuns(t *testing.T, runs []report) string {
	t.Helper()
	dir := t.TempDir()
	var lines []string
	for _, r := range runs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	in, md := filepath.Join(dir, "runs.jsonl"), filepath.Join(dir, "RESULTS.md")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := summarize(in, "test", md, "", ""); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
