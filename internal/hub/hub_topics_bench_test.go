package hub

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkPatternChurn creates a fresh concrete topic of a pattern whose
// max_topics (the default, 10,000) is full, so every op has to forget one:
//   - subscribe: an anonymous subscriber names a fresh room and leaves,
//     with the cap full of rooms nobody published to;
//   - publish: a publisher names a fresh room, with the cap full of idle
//     rooms that hold history.
//
// max-lock-ns is the longest single call, about how long it held the hub
// lock that every publish and subscribe of the hub takes; ops>1ms counts
// the calls that took longer than a millisecond. Both include whatever
// the scheduler and GC added on a busy machine: compare them across runs.
//
//	go test -run '^$' -bench PatternChurn -benchmem
func BenchmarkPatternChurn(b *testing.B) {
	const group = "room/*"
	ref := func(i int) TopicRef {
		return TopicRef{Name: fmt.Sprintf("room/%d", i), Ring: DefaultRingConfig(), Group: group, GroupMax: DefaultMaxTopics}
	}
	msg := &Message{Data: "x"}
	b.Run("subscribe", func(b *testing.B) {
		h := NewHub()
		for i := 0; i < DefaultMaxTopics; i++ {
			s, _, err := h.Subscribe([]TopicRef{ref(i)}, "", 1)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
		refs := make([]TopicRef, 1<<16)
		for i := range refs {
			refs[i] = ref(DefaultMaxTopics + i)
		}
		var worst time.Duration
		var slow int
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r := refs[i%len(refs)]
			r.Name = fmt.Sprintf("%s.%d", r.Name, i) // fresh every op
			t0 := time.Now()
			s, _, err := h.Subscribe([]TopicRef{r}, "", 1)
			worst, slow = churnTrack(time.Since(t0), worst, slow)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
		b.ReportMetric(float64(worst.Nanoseconds()), "max-lock-ns")
		b.ReportMetric(float64(slow), "ops>1ms")
	})
	b.Run("publish", func(b *testing.B) {
		h := NewHub()
		for i := 0; i < DefaultMaxTopics; i++ {
			if _, err := h.publish([]Publication{{Message: msg, Topics: []TopicRef{ref(i)}}}); err != nil {
				b.Fatal(err)
			}
		}
		var worst time.Duration
		var slow int
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r := ref(DefaultMaxTopics + i)
			t0 := time.Now()
			_, err := h.publish([]Publication{{Message: msg, Topics: []TopicRef{r}}})
			worst, slow = churnTrack(time.Since(t0), worst, slow)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(worst.Nanoseconds()), "max-lock-ns")
		b.ReportMetric(float64(slow), "ops>1ms")
	})
}

func churnTrack(d, worst time.Duration, slow int) (time.Duration, int) {
	if d > time.Millisecond {
		slow++
	}
	return max(worst, d), slow
}

// BenchmarkPatternTopicMemory measures what one concrete topic of a pattern
// costs the hub while it is held in memory: idle and empty (what churn
// leaves), and holding one small event. docs/performance.md's figures come from it.
//
//	go test -run '^$' -bench PatternTopicMemory -benchtime 3x
func BenchmarkPatternTopicMemory(b *testing.B) {
	const n = DefaultMaxTopics
	ref := func(i int) TopicRef {
		return TopicRef{Name: fmt.Sprintf("room/%08d", i), Ring: DefaultRingConfig(), Group: "room/*", GroupMax: n}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for _, tc := range []struct {
		name   string
		create func(h *Hub, r TopicRef)
	}{
		{"empty", func(h *Hub, r TopicRef) {
			s, _, err := h.Subscribe([]TopicRef{r}, "", 1)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}},
		{"one-event", func(h *Hub, r TopicRef) {
			if _, err := h.publish([]Publication{{Message: &Message{Data: "x"}, Topics: []TopicRef{r}}}); err != nil {
				b.Fatal(err)
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			refs := make([]TopicRef, n)
			for i := range refs {
				refs[i] = ref(i)
			}
			var per float64
			for b.Loop() {
				h := NewHub()
				before := heap()
				for _, r := range refs {
					tc.create(h, r)
				}
				per = float64(heap()-before) / n
				runtime.KeepAlive(h)
			}
			b.ReportMetric(per, "B/topic")
		})
	}
}
