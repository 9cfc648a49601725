package hub

import (
	"strings"
	"sync"
	"testing"
)

// go test -run '^$' -bench . -benchmem
// Speed is measured here and by cmd/ssebench, never by timed asserts.

func BenchmarkEncodeEvent(b *testing.B) {
	m := &Message{Name: "update", Data: strings.Repeat("x", 256)}
	id := ID{Epoch: "abcdefghij", Seq: 123456}
	b.SetBytes(int64(len(m.Data)))
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeEvent(id, m)
	}
}

func BenchmarkEncodeEventMultiline(b *testing.B) {
	m := &Message{Data: strings.Repeat("a line of text\r\n", 64)}
	id := ID{Epoch: "abcdefghij", Seq: 123456}
	b.SetBytes(int64(len(m.Data)))
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeEvent(id, m)
	}
}

func BenchmarkRingAppend(b *testing.B) {
	r := newRing(DefaultRingConfig())
	ev := &Event{ID: ID{Epoch: "e", Seq: 1}, Wire: make([]byte, 300)}
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		e := *ev
		e.ID.Seq = seq
		r.append(&e)
	}
}

func BenchmarkRingResume(b *testing.B) {
	r := newRing(DefaultRingConfig())
	for i := uint64(1); i <= 1000; i++ {
		r.append(&Event{ID: ID{Epoch: "e", Seq: i}, Wire: make([]byte, 300)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(r.after(900)) != 100 {
			b.Fatal("wrong replay")
		}
	}
}

// BenchmarkFanout1k publishes to a topic with 1,000 subscribers, each
// drained by its own goroutine as a stream's writer would. One op is one
// event delivered to all 1,000; allocs/op divided by 1,000 is the cost per
// delivery (the goal is 0: the encoded bytes are shared).
func BenchmarkFanout1k(b *testing.B) {
	const subscribers = 1000
	h := NewHub()
	refs := []TopicRef{{Name: "bench", Ring: DefaultRingConfig()}}
	var wg sync.WaitGroup
	subs := make([]*Subscription, subscribers)
	for i := range subs {
		s, _, err := h.Subscribe(refs, "", 1<<16)
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = s
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []*Event
			for n := 0; n < b.N; n += len(batch) {
				<-s.Ready()
				batch = s.Take(batch[:0])
			}
		}()
	}
	pub := []Publication{{Message: &Message{Data: strings.Repeat("x", 256)}, Topics: refs}}
	for i := 0; i < b.N; i++ {
		res, err := h.publish(pub)
		if err != nil || res[0].Delivered != subscribers {
			b.Fatalf("delivered %v, %v", res, err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*subscribers)/b.Elapsed().Seconds(), "deliveries/s")
}
