package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// metric is one number of the comparison table.
type metric struct {
	scenario, name string
	get            func(*report) float64
	higherIsBetter bool
}

var tableMetrics = []metric{
	{"idle", "RSS per subscriber at 10k (KiB)", func(r *report) float64 { return r.KiBPerSubscriber }, false},
	{"fanout-1k", "fan-out 1k: p99 latency (ms)", func(r *report) float64 { return r.LatencyP99ms }, false},
	{"fanout-5k", "fan-out 5k: p99 latency (ms)", func(r *report) float64 { return r.LatencyP99ms }, false},
	{"fanout", "fan-out 10k: p50 latency (ms)", func(r *report) float64 { return r.LatencyP50ms }, false},
	{"fanout", "fan-out 10k: p99 latency (ms)", func(r *report) float64 { return r.LatencyP99ms }, false},
	{"fanout", "fan-out 10k: server CPU s per million deliveries", func(r *report) float64 { return r.CPUSecondsPerMillion }, false},
	{"fanout", "fan-out 10k: load tool CPU s per million deliveries (same cores)", func(r *report) float64 { return r.ToolCPUPerMillion }, false},
	{"fanout", "connect 10k subscribers (s)", func(r *report) float64 { return r.ConnectSeconds }, false},
	{"sustained", "sustained: deliveries/s (500k offered)", func(r *report) float64 { return r.DeliveredPerSec }, true},
	{"sustained", "sustained: p99 latency (ms)", func(r *report) float64 { return r.LatencyP99ms }, false},
	{"sustained", "sustained: server CPU s per million deliveries", func(r *report) float64 { return r.CPUSecondsPerMillion }, false},
	{"publish", "publish: single-event POSTs/s accepted", func(r *report) float64 { return r.AcceptedPerSec }, true},
	{"publish", "publish: POST round trip p99 (ms)", func(r *report) float64 { return r.PublishP99ms }, false},
	{"publish", "publish: deliveries/s", func(r *report) float64 { return r.DeliveredPerSec }, true},
	{"stream", "streaming publish: events/s ingested", func(r *report) float64 { return r.PublishPerSec }, true},
}

// summarize reads the JSON lines of compare.sh and writes the comparison.
// notesPath, if set, is hand-written analysis appended to the report.
func summarize(path, machine, markdownPath, svgPath, notesPath string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runs := map[string][]*report{} // "system/scenario"
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r report
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Label == "" {
			continue
		}
		if _, ok := runs[r.Label]; !ok {
			order = append(order, r.Label)
		}
		runs[r.Label] = append(runs[r.Label], &r)
	}
	systems := systemsOf(order)

	var b strings.Builder
	fmt.Fprintf(&b, "# caddy-sse against Nchan: measured side by side\n\n")
	fmt.Fprintf(&b, "- Machine: %s\n- Date: %s\n", machine, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Command: `bash bench/compare.sh` (the load tool is `cmd/ssebench`; every system restarted for every run, systems alternated, loopback only)\n")
	fmt.Fprintf(&b, "- Settings: caddy-sse's defaults (`bench/Caddyfile.bench` declares the topic and nothing else: a ring of 1000 events, heartbeats every 15 s, the default `queue`); Nchan with the same buffer and ping (`bench/nchan.conf`); 256 B events\n")
	fmt.Fprintf(&b, "- Each cell is the median of the runs (n in brackets); a ratio column divides the first system named by the second.\n")
	fmt.Fprintf(&b, "- caddy-redis: two caddy-sse instances sharing one local redis-server, subscribers split between them, publishing on the first; memory and CPU are those of both instances and Redis together.\n")
	if slices.Contains(systems, referenceSystem) {
		fmt.Fprintf(&b, "- reference: `bench/reference`, a bare-socket epoll server written for the bench that does nothing but fan out (no replay, auth or topics to declare), with caddy-sse's defaults for pending bytes, coalescing and heartbeats: the limit of this machine for the same wire format. A `÷ reference` column says how far a system is from it.\n")
	}
	b.WriteString("\n")
	pairs := ratioPairs(systems)
	var ratioHeads []string
	for _, p := range pairs {
		ratioHeads = append(ratioHeads, p[0]+" ÷ "+p[1])
	}
	fmt.Fprintf(&b, "| scenario | %s |\n|---|%s\n", strings.Join(append(append([]string{}, systems...), ratioHeads...), " | "), strings.Repeat("---|", len(systems)+len(pairs)))
	for _, m := range tableMetrics {
		var cells []string
		vals := map[string]float64{}
		for _, sys := range systems {
			rs := runs[sys+"/"+m.scenario]
			if len(rs) == 0 {
				cells = append(cells, "n/a")
				continue
			}
			v := median(rs, m.get)
			cells = append(cells, fmt.Sprintf("%s (%d)", num(v), len(rs)))
			vals[sys] = v
		}
		for _, p := range pairs {
			ratio := "–"
			if a, b := vals[p[0]], vals[p[1]]; a > 0 && b > 0 {
				ratio = fmt.Sprintf("%.2f", a/b)
			}
			cells = append(cells, ratio)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", m.name, strings.Join(cells, " | "))
	}
	writePublishTable(&b, runs, systems)
	writeDeliveryTable(&b, runs, order)
	fmt.Fprintf(&b, "\n\nLatency against subscriber count: [latency.svg](latency.svg).\n\n## Every run\n\n```\n")
	for _, label := range order {
		for _, r := range runs[label] {
			r.print(&b)
		}
	}
	fmt.Fprintf(&b, "```\n")
	if notesPath != "" {
		notes, err := os.ReadFile(notesPath)
		if err != nil {
			return err
		}
		b.WriteString("\n")
		b.Write(notes)
	}
	if markdownPath != "" {
		if err := os.WriteFile(markdownPath, []byte(b.String()), 0o644); err != nil {
			return err
		}
	} else {
		fmt.Print(b.String())
	}
	if svgPath != "" {
		return os.WriteFile(svgPath, []byte(latencySVG(runs, systems)), 0o644)
	}
	return nil
}

// writePublishTable gives the publish scenario per system: what publishers
// got (accepted, refused, how long a POST took) next to what subscribers
// got (dropped, lost), and the delivered rate against Nchan's.
func writePublishTable(b *strings.Builder, runs map[string][]*report, systems []string) {
	var rows []string
	base := medianOr(runs["nchan/publish"], func(r *report) float64 { return r.DeliveredPerSec })
	for _, sys := range systems {
		rs := runs[sys+"/publish"]
		if len(rs) == 0 {
			continue
		}
		get := func(f func(*report) float64) string { return num(median(rs, f)) }
		t := totals(rs)
		ratio := "–"
		if d := median(rs, func(r *report) float64 { return r.DeliveredPerSec }); base > 0 && d > 0 {
			ratio = fmt.Sprintf("%.2f", d/base)
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %d of %d | %d | %d | %d | %d | %d | %s | %s |",
			sys, len(rs),
			get(func(r *report) float64 { return r.AcceptedPerSec }),
			rejectedCell(rs),
			get(func(r *report) float64 { return r.PublishP50ms }),
			get(func(r *report) float64 { return r.PublishP99ms }),
			t.dropped, t.subscribers, t.expected, t.delivered, t.lost, t.duplicated, t.outOfOrder,
			get(func(r *report) float64 { return r.DeliveredPerSec }), ratio))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### Publish scenario: publishers and subscribers\n\n")
	fmt.Fprintf(b, "Single-event POSTs as fast as 8 connections go, 100 subscribers. Rates and round trips are medians of the runs; counts are totals over all runs. ")
	fmt.Fprintf(b, "A dropped subscriber's stream ended before the run did; the tool does not reconnect it, so everything published after counts as lost. ")
	fmt.Fprintf(b, "Rejected POSTs are answers other than 2xx, by status (one with Retry-After was waited out, then retried).\n\n")
	fmt.Fprintf(b, "| system | runs | POSTs/s accepted | POSTs rejected | POST p50 (ms) | POST p99 (ms) | subscribers dropped | deliveries expected | delivered | lost | duplicated | out of order | deliveries/s | deliveries/s ÷ nchan |\n")
	fmt.Fprintf(b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n%s\n", strings.Join(rows, "\n"))
}

// writeDeliveryTable gives, for every system and scenario, what the
// subscribers got, totalled over the runs.
func writeDeliveryTable(b *strings.Builder, runs map[string][]*report, order []string) {
	fmt.Fprintf(b, "\n### Deliveries, every run\n\nTotals over the runs of each scenario. A dropped subscriber is not reconnected, so everything published after its drop counts as lost.\n\n")
	fmt.Fprintf(b, "| run | runs | subscribers dropped | deliveries expected | delivered | lost | duplicated | out of order | POSTs rejected |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, label := range order {
		t := totals(runs[label])
		fmt.Fprintf(b, "| %s | %d | %d of %d | %d | %d | %d | %d | %d | %s |\n",
			label, len(runs[label]), t.dropped, t.subscribers, t.expected, t.delivered, t.lost, t.duplicated, t.outOfOrder, rejectedCell(runs[label]))
	}
}

type runTotals struct {
	subscribers, dropped                              int
	expected, delivered, lost, duplicated, outOfOrder int64
}

func totals(rs []*report) runTotals {
	var t runTotals
	for _, r := range rs {
		t.subscribers += r.Subscribers - r.FailedSubs
		t.dropped += r.Dropped
		t.expected += r.Expected
		t.delivered += r.Delivered
		t.lost += r.Lost
		t.duplicated += r.Duplicated
		t.outOfOrder += r.OutOfOrder
	}
	return t
}

// rejectedCell totals refused requests by status over runs: "0", or
// "503×12, 429×1".
func rejectedCell(rs []*report) string {
	sum := map[string]int64{}
	for _, r := range rs {
		for st, n := range r.RejectedByStatus {
			sum[st] += n
		}
	}
	if len(sum) == 0 {
		return "0"
	}
	return statusList(sum, "", "")
}

func medianOr(rs []*report, get func(*report) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	return median(rs, get)
}

// referenceSystem is bench/reference's label: the machine's limit.
const referenceSystem = "reference"

// ratioPairs names the ratio columns: the first system against the second
// (caddy-sse against Nchan), the Redis engine against the memory hub, and
// every system against the reference when it ran.
func ratioPairs(systems []string) [][2]string {
	var out [][2]string
	add := func(a, b string) {
		if !slices.Contains(out, [2]string{a, b}) {
			out = append(out, [2]string{a, b})
		}
	}
	if len(systems) >= 2 && systems[1] != "caddy-redis" && !slices.Contains(systems[:2], referenceSystem) {
		add(systems[0], systems[1])
	}
	for _, s := range systems {
		if s == "caddy-redis" && systems[0] != s {
			add(s, systems[0])
		}
	}
	if slices.Contains(systems, referenceSystem) {
		for _, s := range systems {
			if s != referenceSystem {
				add(s, referenceSystem)
			}
		}
	}
	return out
}

func systemsOf(labels []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range labels {
		sys, _, _ := strings.Cut(l, "/")
		if !seen[sys] {
			seen[sys] = true
			out = append(out, sys)
		}
	}
	return out
}

func median(rs []*report, get func(*report) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = get(r)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// latencySVG plots p50 and p99 fan-out latency against subscriber count.
func latencySVG(runs map[string][]*report, systems []string) string {
	points := []struct {
		scenario string
		subs     float64
	}{{"fanout-1k", 1000}, {"fanout-5k", 5000}, {"fanout", 10000}}
	const w, h, left, bottom, top, right = 640.0, 400.0, 70.0, 50.0, 40.0, 150.0
	var maxY float64 = 1
	type series struct {
		name  string
		color string
		dash  string
		xy    [][2]float64
	}
	colors := []string{"#0ea5e9", "#f97316", "#22c55e", "#a855f7"}
	var all []series
	for i, sys := range systems {
		for _, q := range []struct {
			name string
			get  func(*report) float64
			dash string
		}{{"p50", func(r *report) float64 { return r.LatencyP50ms }, "6,4"}, {"p99", func(r *report) float64 { return r.LatencyP99ms }, ""}} {
			s := series{name: sys + " " + q.name, color: colors[i%len(colors)], dash: q.dash}
			for _, p := range points {
				if rs := runs[sys+"/"+p.scenario]; len(rs) > 0 {
					y := median(rs, q.get)
					s.xy = append(s.xy, [2]float64{p.subs, y})
					maxY = max(maxY, y)
				}
			}
			if len(s.xy) > 0 {
				all = append(all, s)
			}
		}
	}
	maxY *= 1.1
	px := func(x float64) float64 { return left + (x/10000)*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - (y/maxY)*(h-bottom-top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" font-weight="bold">Fan-out delivery latency (one 256 B event/s)</text>`+"\n", left)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/>`+"\n", left, top, left, h-bottom)
	for _, p := range points {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%.0fk</text>`+"\n", px(p.subs), h-bottom+18, p.subs/1000)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">subscribers</text>`+"\n", (left+w-right)/2, h-12)
	for i := 0; i <= 4; i++ {
		y := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%s ms</text>`+"\n",
			left, py(y), w-right, py(y), left-6, py(y)+4, num(y))
	}
	for i, s := range all {
		var pts []string
		for _, xy := range s.xy {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xy[0]), py(xy[1])))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(xy[0]), py(xy[1]), s.color)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", strings.Join(pts, " "), s.color, s.dash)
		ly := top + 10 + float64(i)*20
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			w-right+10, ly, w-right+35, ly, s.color, s.dash, w-right+40, ly+4, s.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
