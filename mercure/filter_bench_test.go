package mercure

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"
)

// BenchmarkFilteredPublish is the shape of the publish scenario of
// bench/compare.sh (caddy-mercure) inside the process: 100 subscribers of
// one topic, each with sse_mercure's filter (half anonymous, half holding
// a token that may read everything, all matching the update's topic), 8
// publishers at once, each op one update. filter=none is the same fan-out
// without filters (sse's): the difference is the cost of the filter
// passes.
//
//	go test -run '^$' -bench BenchmarkFilteredPublish -count 5 ./mercure
func BenchmarkFilteredPublish(b *testing.B) {
	for _, filtered := range []bool{false, true} {
		name := "filter=none"
		if filtered {
			name = "filter=mercure"
		}
		b.Run(name, func(b *testing.B) { benchFilteredPublish(b, filtered) })
	}
}

func benchFilteredPublish(b *testing.B, filtered bool) {
	const subs, topic = 100, "https://example.com/bench"
	h := hub.NewHub()
	defer h.Close()
	ref := hub.TopicRef{Name: "~bench-mercure", Ring: hub.RingConfig{Replay: 1000, ReplaySize: 4 << 20}}
	sels := NewMercureSelectors(MercureSelectorConfig{})
	routed := mustCompileAll(b, sels, selExact(topic))
	all := mustCompileAll(b, sels, MercureSelector{MercureExact, "*"})
	var wg sync.WaitGroup
	for i := range subs {
		opts := hub.SubscribeOptions{QueueLen: 256}
		if filtered {
			var private []*MercureMatcher
			if i%2 == 0 {
				private = all
			}
			decider := sels.Decider(routed, private)
			opts.Filter = func(ev *hub.Event) bool { // as MercureHandler.subscribe's
				meta, _ := ev.Decoded(decodeMercureMeta).(*mercureMeta)
				return meta != nil && meta.allows(decider)
			}
		}
		s, _, err := h.SubscribeWith([]hub.TopicRef{ref}, opts)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { // a reader that keeps up
			defer wg.Done()
			var buf []*hub.Event
			for {
				select {
				case <-s.Ready():
					buf = s.Take(buf[:0])
					clear(buf)
				case <-s.Done():
					return
				}
			}
		}()
	}
	meta, _ := json.Marshal(mercureMeta{Topics: []string{topic}})
	ctx := context.Background()
	b.SetParallelism(8 / max(1, runtime.GOMAXPROCS(0)))
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := &hub.Message{Data: "x", Meta: string(meta)}
			out, err := h.Publish(ctx, []hub.Publication{{Message: m, Topics: []hub.TopicRef{ref}}}, hub.PublishOptions{Wait: stream.DefaultOverloadWait})
			if err != nil {
				b.Error(err)
				return
			}
			if out.Results[0].Delivered != subs {
				b.Errorf("delivered to %d subscribers, want %d", out.Results[0].Delivered, subs)
				return
			}
		}
	})
	b.StopTimer()
	// The process's CPU per update (readers included): on a shared
	// machine, wall time per op moves with the other processes.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	_ = h.Close()
	wg.Wait()
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
