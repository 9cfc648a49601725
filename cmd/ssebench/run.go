package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// report is one run's result; JSON field names are what bench/compare.sh reads.
type report struct {
	Label       string  `json:"label"`
	Mode        string  `json:"mode"`
	Subscribers int     `json:"subscribers"`
	FailedSubs  int     `json:"failed_subscribers"`
	Size        int     `json:"size"`
	RateOffered float64 `json:"rate_offered"`

	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectP50ms   float64 `json:"connect_p50_ms"`
	ConnectP99ms   float64 `json:"connect_p99_ms"`

	Published       uint64  `json:"published"`
	PublishErrors   int64   `json:"publish_errors"`
	PublishPerSec   float64 `json:"publishes_per_second"`
	Delivered       int64   `json:"delivered"`
	DeliveredPerSec float64 `json:"deliveries_per_second"`
	Lost            int64   `json:"lost"`
	Late            int64   `json:"duplicated_or_out_of_order"`

	LatencyP50ms float64 `json:"latency_p50_ms"`
	LatencyP90ms float64 `json:"latency_p90_ms"`
	LatencyP99ms float64 `json:"latency_p99_ms"`
	LatencyMaxms float64 `json:"latency_max_ms"`

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
	var counter atomic.Int64
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
			s, err := dialSubscriber(ctx, &c, c.subURLs[i%len(c.subURLs)], h2, publishers)
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

	hists, stopReaders, err := startReaders(&c, live, &counter)
	if err != nil {
		return nil, err
	}

	cpu0, _ := procCPU(c.pids)
	self := []int{os.Getpid()}
	toolCPU0, _ := procCPU(self)
	pubStart := time.Now()
	pres := publish(ctx, &c)
	var published uint64
	for _, n := range pres.acked {
		published += n
	}
	rep.Published = published
	rep.PublishErrors = pres.errors
	rep.PublishPerSec = float64(published) / pres.elapsed.Seconds()

	// Settle: wait until every live subscriber has everything, or give up
	// after c.settle. Deliveries are counted as they happen.
	want := int64(published) * int64(len(live))
	deadline := time.Now().Add(c.settle)
	lastDelivery := time.Now()
	for prev := counter.Load(); counter.Load() < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // polling a counter; there is no event to await
		if n := counter.Load(); n != prev {
			prev, lastDelivery = n, time.Now()
		}
	}
	window := lastDelivery.Sub(pubStart)
	cpu1, _ := procCPU(c.pids)
	toolCPU1, _ := procCPU(self)
	stopReaders()

	var hist histogram
	for _, h := range hists {
		hist.merge(h)
	}
	for _, s := range live {
		rep.Delivered += s.received
		rep.Lost += s.lost(pres.acked)
		rep.Late += s.late
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
func startReaders(c *config, live []*subscriber, counter *atomic.Int64) ([]*histogram, func(), error) {
	if !c.http2 && c.reader == "epoll" {
		readers, stop, err := startEpollReaders(live, c.readers, counter)
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
	hists := make([]*histogram, len(live))
	for i, s := range live {
		hists[i] = new(histogram)
		wg.Add(1)
		go func() { defer wg.Done(); s.read(hists[i], counter) }()
	}
	stop := func() {
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
	fmt.Fprintf(w, "  connect     %.2fs for all; p50 %.1f ms, p99 %.1f ms\n", r.ConnectSeconds, r.ConnectP50ms, r.ConnectP99ms)
	fmt.Fprintf(w, "  published   %d (%.0f/s), %d errors\n", r.Published, r.PublishPerSec, r.PublishErrors)
	fmt.Fprintf(w, "  delivered   %d (%.0f/s); lost %d, duplicated or out of order %d\n", r.Delivered, r.DeliveredPerSec, r.Lost, r.Late)
	fmt.Fprintf(w, "  latency     p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n", r.LatencyP50ms, r.LatencyP90ms, r.LatencyP99ms, r.LatencyMaxms)
	if r.ServerRSSKiB > 0 {
		fmt.Fprintf(w, "  server      RSS %d KiB (%.1f KiB per subscriber), CPU %.2fs (%.2fs per million deliveries)\n",
			r.ServerRSSKiB, r.KiBPerSubscriber, r.ServerCPUSeconds, r.CPUSecondsPerMillion)
	}
	fmt.Fprintf(w, "  load tool   CPU %.2fs (%.2fs per million deliveries)\n", r.ToolCPUSeconds, r.ToolCPUPerMillion)
}
