package hub

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// overloadTestPublish publishes one event with a bounded wait.
func overloadTestPublish(h *Hub, wait time.Duration, data string, refs ...TopicRef) ([]PublishResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := h.Publish(ctx, []Publication{{Message: &Message{Data: data}, Topics: refs}}, PublishOptions{})
	return out.Results, err
}

// stuckFor marks s's socket as not having taken bytes for d.
func stuckFor(s *Subscription, d time.Duration) {
	s.blockedSince.Store(monoNow() - int64(d))
}

// A full subscriber whose socket still takes bytes is one the machine has
// not caught up with: the publish waits for it, and past its wait is
// refused with ErrOverloaded, having published nothing and dropped no one.
func TestOverloadPublishWaitsForAReader(t *testing.T) {
	h := NewHub()
	s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 2)
	hubTestPublish(t, h, "1", hubTestRefs("a")...)
	hubTestPublish(t, h, "2", hubTestRefs("a")...)
	if !s.Full() {
		t.Fatal("a queue of 2 holding 2 events is not full")
	}
	before := h.Stats()
	_, err := overloadTestPublish(h, 50*time.Millisecond, "3", hubTestRefs("a")...)
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("publish to a full reader = %v, want ErrOverloaded", err)
	}
	after := h.Stats()
	if after.LastSeq != before.LastSeq || after.Retained != before.Retained || after.Published != before.Published {
		t.Fatalf("a refused publish changed the hub: %+v -> %+v", before, after)
	}
	if hubTestIsClosed(s.Done()) || after.DroppedSlow != 0 {
		t.Fatal("the reader was dropped because a publisher was fast")
	}

	// A waiting publish goes through as soon as the reader takes.
	done := make(chan error, 1)
	go func() {
		_, err := overloadTestPublish(h, 10*time.Second, "3", hubTestRefs("a")...)
		done <- err
	}()
	waitFor(t, "the publisher to wait", func() bool { return h.room.waiters.Load() == 1 })
	if got := hubTestSeqs(hubTestDrain(s)); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("reader took %v, want [1 2]", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("publish after the reader took: %v", err)
	}
	if got := hubTestSeqs(hubTestDrain(s)); !reflect.DeepEqual(got, []uint64{3}) {
		t.Fatalf("reader then got %v, want [3]", got)
	}
	if h.room.waiters.Load() != 0 || h.full.Load() != 0 {
		t.Fatalf("waiters %d, full %d after the wait; want 0, 0", h.room.waiters.Load(), h.full.Load())
	}
}

// A subscriber whose socket has stopped taking bytes, next to peers that
// keep up, is dropped alone and the publisher does not wait.
func TestOverloadStuckMinorityDropped(t *testing.T) {
	h := NewHub()
	stuck, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 2)
	peers := make([]*Subscription, 2)
	for i := range peers {
		peers[i], _ = hubTestSubscribe(t, h, hubTestRefs("a"), "", 2)
	}
	stuckFor(stuck, stuckAfter)
	for i := 1; i <= 4; i++ {
		if _, err := overloadTestPublish(h, 10*time.Millisecond, fmt.Sprint(i), hubTestRefs("a")...); err != nil {
			t.Fatalf("publish %d with one stuck peer: %v", i, err)
		}
		for _, p := range peers {
			hubTestDrain(p)
		}
	}
	if !hubTestIsClosed(stuck.Done()) {
		t.Fatal("the stuck subscriber was not dropped")
	}
	for i, p := range peers {
		if hubTestIsClosed(p.Done()) {
			t.Fatalf("peer %d was dropped", i)
		}
	}
	if st := h.Stats(); st.DroppedSlow != 1 || st.Subscribers != 2 {
		t.Fatalf("stats after the drop: %+v", st)
	}
}

// A subscriber alone on its topic is waited for while its socket has
// only just stopped taking bytes, and dropped once that lasts stuckAfter.
func TestOverloadStuckAloneWaitsBrieflyThenDrops(t *testing.T) {
	h := NewHub()
	s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 1)
	hubTestPublish(t, h, "1", hubTestRefs("a")...)
	stuckFor(s, stuckAfter/10)
	if _, err := overloadTestPublish(h, time.Millisecond, "2", hubTestRefs("a")...); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("publish with its only subscriber blocked for a moment = %v, want ErrOverloaded", err)
	}
	if hubTestIsClosed(s.Done()) {
		t.Fatal("dropped after its socket was blocked for a moment")
	}
	// Waiting long enough, the publisher sees it become stuck and goes on.
	if _, err := overloadTestPublish(h, 10*time.Second, "2", hubTestRefs("a")...); err != nil {
		t.Fatalf("publish once the subscriber is stuck: %v", err)
	}
	if !hubTestIsClosed(s.Done()) {
		t.Fatal("a subscriber stuck for stuckAfter was not dropped")
	}
}

// A publish larger than the queue reaches a subscriber whose queue was not
// full: a JSON array of 300 events must not drop readers of a queue of 256.
func TestOverloadBatchLargerThanQueue(t *testing.T) {
	h := NewHub()
	s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 4)
	batch := make([]Publication, 10)
	for i := range batch {
		batch[i] = Publication{Message: &Message{Data: "x"}, Topics: hubTestRefs("a")}
	}
	res, err := h.publish(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Delivered != 1 {
			t.Fatalf("event %d of the batch delivered to %d, want 1", i, r.Delivered)
		}
	}
	if hubTestIsClosed(s.Done()) {
		t.Fatal("a batch larger than the queue dropped its subscriber")
	}
	if n := len(hubTestDrain(s)); n != 10 {
		t.Fatalf("subscriber got %d events, want 10", n)
	}
}

// The byte bound fills a queue as the event bound does.
func TestOverloadQueueBytes(t *testing.T) {
	h := NewHub()
	s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 1000)
	s.LimitBytes(4 << 10)
	big := strings.Repeat("x", 3<<10)
	hubTestPublish(t, h, big, hubTestRefs("a")...)
	if s.Full() {
		t.Fatal("full after 3 KiB of a 4 KiB bound")
	}
	hubTestPublish(t, h, big, hubTestRefs("a")...)
	if !s.Full() {
		t.Fatal("not full after 6 KiB of a 4 KiB bound")
	}
	if _, err := overloadTestPublish(h, 20*time.Millisecond, "x", hubTestRefs("a")...); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("publish past the byte bound = %v, want ErrOverloaded", err)
	}
	hubTestDrain(s)
	if s.Full() || h.full.Load() != 0 {
		t.Fatal("still full after the queue was taken")
	}
}

// A queue past half of its bound asks its writer, through Urgent, to stop
// gathering and write now.
func TestOverloadUrgentAtHalf(t *testing.T) {
	h := NewHub()
	s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 4)
	hubTestPublish(t, h, "1", hubTestRefs("a")...)
	if hubTestIsClosed(s.Urgent()) {
		t.Fatal("urgent with 1 of 4 queued")
	}
	hubTestPublish(t, h, "2", hubTestRefs("a")...)
	select {
	case <-s.Urgent():
	default:
		t.Fatal("not urgent with 2 of 4 queued")
	}
	hubTestDrain(s)
	hubTestPublish(t, h, "3", hubTestRefs("a")...)
	select {
	case <-s.Urgent():
		t.Fatal("urgent again with 1 of 4 queued after a take")
	default:
	}
}

// A subscriber that leaves while full frees publishers waiting for it.
func TestOverloadLeavingFullSubscriberFreesWaiters(t *testing.T) {
	h := NewHub()
	s, _, err := h.Subscribe(hubTestRefs("a"), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	hubTestPublish(t, h, "1", hubTestRefs("a")...)
	done := make(chan error, 1)
	go func() {
		_, err := overloadTestPublish(h, 10*time.Second, "2", hubTestRefs("a")...)
		done <- err
	}()
	waitFor(t, "the publisher to wait", func() bool { return h.room.waiters.Load() == 1 })
	s.Close()
	if err := <-done; err != nil {
		t.Fatalf("publish after the full subscriber left: %v", err)
	}
	if h.full.Load() != 0 {
		t.Fatalf("full = %d after the only full subscriber left", h.full.Load())
	}
}

// Many publishers and readers at once: every reader gets every event in
// order, none is dropped, and publishers only ever wait (run with -race).
func TestOverloadReadersNeverDropped(t *testing.T) {
	const readers, publishers, perPublisher = 8, 4, 2000
	h := NewHub()
	var wg sync.WaitGroup
	counts := make([]int, readers)
	for i := 0; i < readers; i++ {
		s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 8)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var last uint64
			for counts[i] < publishers*perPublisher {
				select {
				case <-s.Ready():
				case <-s.Urgent():
				case <-s.Done():
					t.Errorf("reader %d dropped after %d events", i, counts[i])
					return
				}
				for _, ev := range s.Take(nil) {
					if ev.ID.Seq <= last {
						t.Errorf("reader %d: seq %d after %d", i, ev.ID.Seq, last)
					}
					last = ev.ID.Seq
					counts[i]++
				}
			}
		}(i)
	}
	var pw sync.WaitGroup
	for p := 0; p < publishers; p++ {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for j := 0; j < perPublisher; j++ {
				if _, err := overloadTestPublish(h, 10*time.Second, "x", hubTestRefs("a")...); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	pw.Wait()
	wg.Wait()
	if st := h.Stats(); st.DroppedSlow != 0 {
		t.Fatalf("%d readers dropped", st.DroppedSlow)
	}
}

// waitFor polls cond, a safety net for states no event announces.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A fan-out to more subscribers than one goroutine tells (notifyPerWorker)
// is split over workers; each subscriber is told exactly once per publish
// and gets every event, whether its Notifier takes the events or
// leaves them to its reader (run with -race).
func TestNotifyParallelFanOut(t *testing.T) {
	const subs, events = 3*notifyPerWorker + 17, 5
	h := NewHub()
	type counter struct {
		mu   sync.Mutex
		seqs []uint64
	}
	counts := make([]*counter, subs)
	for i := range counts {
		s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", events)
		c := &counter{}
		counts[i] = c
		takes := i%2 == 0 // half take in the hook, half leave it to Ready
		s.SetNotifier(funcNotifier(func() bool {
			if !takes {
				return false
			}
			c.mu.Lock()
			c.seqs = append(c.seqs, hubTestSeqs(s.Take(nil))...)
			c.mu.Unlock()
			return true
		}))
		if !takes {
			t.Cleanup(func() {
				c.mu.Lock()
				c.seqs = append(c.seqs, hubTestSeqs(hubTestDrain(s))...)
				c.mu.Unlock()
			})
		}
	}
	for e := 0; e < events; e++ {
		if r := hubTestPublish(t, h, "x", hubTestRefs("a")...); r.Delivered != subs {
			t.Fatalf("publish %d delivered to %d, want %d", e, r.Delivered, subs)
		}
	}
	h.mu.Lock()
	var leftOver int
	for s := range h.topics["a"].subs {
		leftOver += s.Queued()
	}
	h.mu.Unlock()
	for i, c := range counts {
		if i%2 == 0 && len(c.seqs) != events {
			t.Fatalf("subscriber %d took %v in its hook, want %d events", i, c.seqs, events)
		}
	}
	if want := (subs / 2) * events; leftOver != want {
		t.Fatalf("%d events wait for readers, want %d", leftOver, want)
	}
}

// funcNotifier is a Notifier whose WriteNow is the function.
type funcNotifier func() bool

func (f funcNotifier) WriteNow() bool { return f() }
func (funcNotifier) Dropped()         {}
