package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// report is one run's result; JSON field names are what bench/compare.sh
// reads. The verdict comes first, so the first line of a JSON report says
// whether anything was dropped or lost.
type report struct {
	Label       string `json:"label"`
	Mode        string `json:"mode"`
	Subscribers int    `json:"subscribers"`
	FailedSubs  int    `json:"failed_subscribers"` // never connected
	// Why the first of them failed: a connection error, or an answer
	// other than 200 text/event-stream.
	FailedReason string  `json:"failed_reason,omitempty"`
	Dropped      int     `json:"subscribers_dropped"`
	Expected     int64   `json:"deliveries_expected"` // published × connected subscribers
	Delivered    int64   `json:"delivered"`           // every event received, repeats included
	Lost         int64   `json:"lost"`
	Duplicated   int64   `json:"duplicated"`
	OutOfOrder   int64   `json:"out_of_order"`
	Size         int     `json:"size"`
	RateOffered  float64 `json:"rate_offered"`

	// Why streams ended before the run did ("ended": the server ended
	// the body; "closed": the connection closed without that; "reset":
	// a read failed; "malformed"), and when the first and last did,
	// in seconds since publishing began.
	DropReasons    map[string]int `json:"dropped_reasons,omitempty"`
	FirstDropAfter float64        `json:"first_drop_after_s,omitempty"`
	LastDropAfter  float64        `json:"last_drop_after_s,omitempty"`

	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectP50ms   float64 `json:"connect_p50_ms"`
	ConnectP99ms   float64 `json:"connect_p99_ms"`

	Published     uint64  `json:"published"` // events acknowledged (2xx)
	PublishPerSec float64 `json:"publishes_per_second"`
	// Requests: a POST per event in post mode, per array in batch mode,
	// one held request in stream mode. Rejected ones were answered with
	// another status (a 503 or 429 that carries Retry-After is waited out,
	// then the same events are sent again); errors got no answer.
	Requests         int64            `json:"publish_requests"`
	Accepted         int64            `json:"publish_accepted"`
	AcceptedPerSec   float64          `json:"publish_accepted_per_second"`
	Rejected         int64            `json:"publish_rejected"`
	RejectedByStatus map[string]int64 `json:"publish_rejected_by_status,omitempty"`
	PublishErrors    int64            `json:"publish_errors"`
	RetryWaitSeconds float64          `json:"publish_retry_wait_seconds,omitempty"`
	// Round trips of answered requests (not in stream mode).
	PublishP50ms float64 `json:"publish_latency_p50_ms"`
	PublishP99ms float64 `json:"publish_latency_p99_ms"`
	PublishMaxms float64 `json:"publish_latency_max_ms"`

	DeliveredPerSec float64 `json:"deliveries_per_second"`
	LatencyP50ms    float64 `json:"latency_p50_ms"`
	LatencyP90ms    float64 `json:"latency_p90_ms"`
	LatencyP99ms    float64 `json:"latency_p99_ms"`
	LatencyMaxms    float64 `json:"latency_max_ms"`

	ServerRSSBaseKiB     int64   `json:"server_rss_base_kib,omitempty"`
	ServerRSSKiB         int64   `json:"server_rss_kib,omitempty"`
	KiBPerSubscriber     float64 `json:"kib_per_subscriber,omitempty"`
	ServerCPUSeconds     float64 `json:"server_cpu_seconds,omitempty"`
	CPUSecondsPerMillion float64 `json:"server_cpu_seconds_per_million_deliveries,omitempty"`

	// The load tool's own CPU over the same window: on shared cores it is
	// CPU the server did not get.
	ToolCPUSeconds    float64 `json:"tool_cpu_seconds"`
	ToolCPUPerMillion float64 `json:"tool_cpu_seconds_per_million_deliveries"`
}

func run(ctx context.Context, c config) (*report, error) {
	rep := &report{Label: c.label, Mode: c.mode, Subscribers: c.subs, Size: c.size, RateOffered: c.rate}
	publishers := c.publishers
	if c.mode == "stream" {
		publishers = 1
	}
	baseRSS, _ := procRSS(c.pids)

	// Connect every subscriber, c.connectConc at a time.
	var counts tally
	h2 := http2Client()
	subs := make([]*subscriber, c.subs)
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, c.connectConc)
	var wg sync.WaitGroup
	connectStart := time.Now()
	for i := range subs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := dialSubscriber(ctx, &c, c.subURLs[i%len(c.subURLs)], c.mercure.subscriberToken(i), h2, publishers)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			subs[i] = s
		}()
	}
	wg.Wait()
	rep.ConnectSeconds = time.Since(connectStart).Seconds()
	rep.FailedSubs = int(failed.Load())
	if rep.FailedSubs == c.subs {
		return nil, fmt.Errorf("no subscriber connected: %v", firstErr.Load())
	}
	if err, ok := firstErr.Load().(error); ok {
		rep.FailedReason = err.Error()
	}
	var live []*subscriber
	var connects []time.Duration
	for _, s := range subs {
		if s != nil {
			live = append(live, s)
			connects = append(connects, s.connect)
		}
	}
	sort.Slice(connects, func(i, j int) bool { return connects[i] < connects[j] })
	rep.ConnectP50ms = ms(connects[len(connects)/2])
	rep.ConnectP99ms = ms(connects[len(connects)*99/100])
	if rss, ok := procRSS(c.pids); ok {
		rep.ServerRSSBaseKiB, rep.ServerRSSKiB = baseRSS, rss
		rep.KiBPerSubscriber = float64(rss-baseRSS) / float64(len(live))
	}

	hists, stopReaders, err := startReaders(&c, live, &counts)
	if err != nil {
		return nil, err
	}

	cpu0, _ := procCPU(c.pids)
	self := []int{os.Getpid()}
	toolCPU0, _ := procCPU(self)
	pubStart := time.Now()
	stopProgress := func() {}
	if c.progress > 0 && c.duration >= progressFrom {
		stopProgress = startProgress(os.Stderr, c.progress, pubStart, len(live), &counts)
	}
	pres := publish(ctx, &c)
	var published uint64
	for _, n := range pres.acked {
		published += n
	}
	rep.Published = published
	rep.PublishPerSec = float64(published) / pres.elapsed.Seconds()
	rq := pres.requests
	rep.Accepted, rep.PublishErrors = rq.accepted, rq.errors
	rep.AcceptedPerSec = float64(rq.accepted) / pres.elapsed.Seconds()
	for st, n := range rq.rejected {
		if rep.RejectedByStatus == nil {
			rep.RejectedByStatus = map[string]int64{}
		}
		rep.RejectedByStatus[strconv.Itoa(st)] = n
		rep.Rejected += n
	}
	rep.Requests = rep.Accepted + rep.Rejected + rep.PublishErrors
	rep.RetryWaitSeconds = rq.waited.Seconds()
	rep.PublishP50ms = ms(pres.latency.quantile(0.50))
	rep.PublishP99ms = ms(pres.latency.quantile(0.99))
	rep.PublishMaxms = ms(pres.latency.max)

	// Settle: wait until every live subscriber has everything (or every
	// one was dropped), or give up after c.settle. Deliveries are counted
	// as they happen.
	want := int64(published) * int64(len(live))
	deadline := time.Now().Add(c.settle)
	lastDelivery := time.Now()
	for prev := counts.delivered.Load(); counts.delivered.Load() < want && counts.dropped.Load() < int64(len(live)) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // polling a counter; there is no event to await
		if n := counts.delivered.Load(); n != prev {
			prev, lastDelivery = n, time.Now()
		}
	}
	stopProgress()
	window := lastDelivery.Sub(pubStart)
	cpu1, _ := procCPU(c.pids)
	toolCPU1, _ := procCPU(self)
	stopReaders()

	var hist histogram
	for _, h := range hists {
		hist.merge(h)
	}
	rep.Expected = want
	var firstDrop, lastDrop int64
	for _, s := range live {
		rep.Delivered += s.received
		rep.Lost += s.lost(pres.acked)
		rep.Duplicated += s.duplicated
		rep.OutOfOrder += s.outOfOrder
		if s.end != endNone {
			rep.Dropped++
			if rep.DropReasons == nil {
				rep.DropReasons = map[string]int{}
			}
			rep.DropReasons[s.end.String()]++
			if firstDrop == 0 || s.endedAt < firstDrop {
				firstDrop = s.endedAt
			}
			lastDrop = max(lastDrop, s.endedAt)
		}
	}
	if rep.Dropped > 0 {
		rep.FirstDropAfter = time.Duration(firstDrop - pubStart.UnixNano()).Seconds()
		rep.LastDropAfter = time.Duration(lastDrop - pubStart.UnixNano()).Seconds()
	}
	rep.DeliveredPerSec = float64(rep.Delivered) / window.Seconds()
	rep.LatencyP50ms = ms(hist.quantile(0.50))
	rep.LatencyP90ms = ms(hist.quantile(0.90))
	rep.LatencyP99ms = ms(hist.quantile(0.99))
	rep.LatencyMaxms = ms(hist.max)
	if len(c.pids) > 0 {
		rep.ServerCPUSeconds = cpu1 - cpu0
		if rep.Delivered > 0 {
			rep.CPUSecondsPerMillion = rep.ServerCPUSeconds / float64(rep.Delivered) * 1e6
		}
	}
	rep.ToolCPUSeconds = toolCPU1 - toolCPU0
	if rep.Delivered > 0 {
		rep.ToolCPUPerMillion = rep.ToolCPUSeconds / float64(rep.Delivered) * 1e6
	}
	return rep, nil
}

// startReaders starts reading every stream: HTTP/1.1 streams on a few
// epoll readers (-reader epoll), otherwise a goroutine each. It returns the
// histograms they fill and a stop that closes the streams and waits for
// the readers.
func startReaders(c *config, live []*subscriber, t *tally) ([]*histogram, func(), error) {
	if !c.http2 && c.reader == "epoll" {
		readers, stop, err := startEpollReaders(live, c.readers, t)
		if err != nil {
			return nil, nil, err
		}
		hists := make([]*histogram, len(readers))
		for i, r := range readers {
			hists[i] = &r.hist
		}
		return hists, stop, nil
	}
	var wg sync.WaitGroup
	var stopping atomic.Bool
	hists := make([]*histogram, len(live))
	for i, s := range live {
		hists[i] = new(histogram)
		wg.Add(1)
		go func() { defer wg.Done(); s.read(hists[i], t, &stopping) }()
	}
	stop := func() {
		stopping.Store(true)
		for _, s := range live {
			s.closer.Close()
		}
		wg.Wait()
	}
	return hists, stop, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procRSS sums the resident memory of processes, in KiB.
func procRSS(pids []int) (int64, bool) {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				total += n
			}
		}
	}
	return total, len(pids) > 0
}

// procCPU sums the user+system CPU seconds of processes. Linux reports
// clock ticks of 1/100 s in /proc/<pid>/stat.
func procCPU(pids []int) (float64, bool) {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, false
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')') // the command name may contain spaces
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			return 0, false
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		total += (utime + stime) / 100
	}
	return total, len(pids) > 0
}

func (r *report) print(w io.Writer) {
	label := r.Label
	if label == "" {
		label = r.Mode
	}
	fmt.Fprintf(w, "%s: %d subscribers (%d failed), %d B events, mode %s, offered %.0f/s\n",
		label, r.Subscribers, r.FailedSubs, r.Size, r.Mode, r.RateOffered)
	if r.FailedReason != "" {
		fmt.Fprintf(w, "  failed      first: %s\n", r.FailedReason)
	}
	fmt.Fprintf(w, "  connect     %.2fs for all; p50 %.1f ms, p99 %.1f ms\n", r.ConnectSeconds, r.ConnectP50ms, r.ConnectP99ms)
	fmt.Fprintf(w, "  published   %d events (%.0f/s); requests %d: %d accepted (%.0f/s), %d rejected%s, %d unanswered\n",
		r.Published, r.PublishPerSec, r.Requests, r.Accepted, r.AcceptedPerSec, r.Rejected, statusList(r.RejectedByStatus, " (", ")"), r.PublishErrors)
	if r.Mode != "stream" {
		fmt.Fprintf(w, "  publish     round trip p50 %.1f ms, p99 %.1f ms, max %.1f ms", r.PublishP50ms, r.PublishP99ms, r.PublishMaxms)
		if r.RetryWaitSeconds > 0 {
			fmt.Fprintf(w, "; %.1fs waiting out Retry-After", r.RetryWaitSeconds)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  delivered   %d of %d expected (%.0f/s); lost %d, duplicated %d, out of order %d\n",
		r.Delivered, r.Expected, r.DeliveredPerSec, r.Lost, r.Duplicated, r.OutOfOrder)
	fmt.Fprintf(w, "  dropped     %d of %d subscribers", r.Dropped, r.Subscribers-r.FailedSubs)
	if r.Dropped > 0 {
		fmt.Fprintf(w, " (%s), from %.2fs to %.2fs after publishing began", reasonList(r.DropReasons), r.FirstDropAfter, r.LastDropAfter)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  latency     p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n", r.LatencyP50ms, r.LatencyP90ms, r.LatencyP99ms, r.LatencyMaxms)
	if r.ServerRSSKiB > 0 {
		fmt.Fprintf(w, "  server      RSS %d KiB (%.1f KiB per subscriber), CPU %.2fs (%.2fs per million deliveries)\n",
			r.ServerRSSKiB, r.KiBPerSubscriber, r.ServerCPUSeconds, r.CPUSecondsPerMillion)
	}
	fmt.Fprintf(w, "  load tool   CPU %.2fs (%.2fs per million deliveries)\n", r.ToolCPUSeconds, r.ToolCPUPerMillion)
}

// statusList renders counts by status as "503×12, 429×1", sorted, between
// before and after; "" when there are none.
func statusList(m map[string]int64, before, after string) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return before + strings.Join(parts, ", ") + after
}

func reasonList(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
