package hub

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFilterNeverUnderHubLock: while a filtered subscriber's filter is
// held, the hub serves everything else: a publish to another topic, a
// subscribe with "earliest" filtered by the same filter, stats. The held
// publish finishes, with its delivery counted, once the filter returns.
func TestFilterNeverUnderHubLock(t *testing.T) {
	h := NewHub()
	defer h.Close()
	a, b := seamTopic("a", 100), seamTopic("b", 100)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	filter := func(ev *Event) bool {
		if dataOf(ev) == "gate" {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
		return true
	}
	held, _ := subWith(t, h, []TopicRef{a}, SubscribeOptions{Filter: filter})
	other, _ := subWith(t, h, []TopicRef{b}, SubscribeOptions{})

	done := make(chan PublishResult, 1)
	go func() {
		res, err := pubMsg(h, a, Message{Data: "gate"})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-entered
	mustPub(t, h, b, Message{Data: "unrelated"})
	if got := takeN(t, other, 1); dataOf(got[0]) != "unrelated" {
		t.Fatalf("other subscriber got %q", dataOf(got[0]))
	}
	// The replay runs the same filter on the same event, outside the lock.
	_, rp := subWith(t, h, []TopicRef{a}, SubscribeOptions{Earliest: true, Filter: keepFilter})
	if len(rp.Events) != 1 || dataOf(rp.Events[0]) != "gate" {
		t.Fatalf("earliest replayed %d events", len(rp.Events))
	}
	_ = h.Stats()
	select {
	case <-done:
		t.Fatal("the held publish returned before its filter did")
	default:
	}
	close(release)
	if res := <-done; res.Delivered != 1 {
		t.Fatalf("held publish delivered %d, want 1", res.Delivered)
	}
	if got := takeN(t, held, 1); dataOf(got[0]) != "gate" {
		t.Fatalf("held subscriber got %q", dataOf(got[0]))
	}
}

// TestFilterConcurrentPublishersKeepOrder: publishers racing on one topic
// each run filter passes outside the lock; every filtered subscriber still
// gets every accepted event once, in id order, and no refused one. Each
// publish reports every delivery of its event when it returns, even when
// another publisher's pass took it, and the topic counts them all.
func TestFilterConcurrentPublishersKeepOrder(t *testing.T) {
	h := NewHub()
	defer h.Close()
	ref := seamTopic("race", 1<<16)
	const publishers, each, subscribers = 4, 200, 6
	subs := make([]*Subscription, subscribers)
	for i := range subs {
		subs[i], _ = subWith(t, h, []TopicRef{ref}, SubscribeOptions{Filter: keepFilter, QueueLen: 1 << 16})
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				meta := ""
				if i%3 == 0 {
					meta = "drop"
				}
				m := &Message{Data: strconv.Itoa(p*each + i), Meta: meta}
				out, err := h.Publish(context.Background(), []Publication{{Message: m, Topics: []TopicRef{ref}}}, PublishOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				delivered := subscribers
				if meta == "drop" {
					delivered = 0
				}
				if got := out.Results[0].Delivered; got != delivered {
					t.Errorf("publish %d reports %d deliveries, want %d", p*each+i, got, delivered)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := publishers * (each - (each+2)/3)
	h.mu.Lock()
	counted := h.topics["race"].delivered.Load()
	h.mu.Unlock()
	if counted != uint64(want*subscribers) {
		t.Errorf("topic counted %d deliveries, want %d", counted, want*subscribers)
	}
	for k, s := range subs {
		got := s.Take(nil) // every publish has returned: its events are queued
		if len(got) != want {
			t.Fatalf("subscriber %d got %d events, want %d", k, len(got), want)
		}
		for i, ev := range got {
			if ev.Meta == "drop" {
				t.Fatalf("subscriber %d got a refused event", k)
			}
			if i > 0 && ev.ID.Seq <= got[i-1].ID.Seq {
				t.Fatalf("subscriber %d: seq %d after %d", k, ev.ID.Seq, got[i-1].ID.Seq)
			}
		}
	}
}

// TestFilterFullQueueReadingNotDropped: two publishes admitted before
// either filtered may overfill a filtered subscriber's queue; one that is
// reading is not dropped for it, one whose socket is stuck is.
func TestFilterFullQueueReadingNotDropped(t *testing.T) {
	h := NewHub()
	defer h.Close()
	ref := seamTopic("full", 100)
	reading, _ := subWith(t, h, []TopicRef{ref}, SubscribeOptions{Filter: keepFilter, QueueLen: 1})
	stuck, _ := subWith(t, h, []TopicRef{ref}, SubscribeOptions{Filter: keepFilter, QueueLen: 1})
	stuck.blockedSince.Store(monoNow() - int64(time.Second))

	// Stage two events from two hub calls, as two racing publishes do,
	// then filter them.
	notify := takeNotifyList()
	defer putNotifyList(notify)
	h.mu.Lock()
	for i := range 2 {
		h.op++
		h.seq++
		id := ID{Epoch: h.epoch, Seq: h.seq}
		ev := &Event{ID: id, Wire: EncodeEvent(id, &Message{Data: strconv.Itoa(i)})}
		h.topics["full"].ring.append(ev)
		h.queueLocked(h.topics["full"], ev, notify, nil, false)
	}
	h.mu.Unlock()
	h.dispatch(notify)

	if r := reading.DropReason(); r != 0 {
		t.Fatalf("a reading subscriber was dropped: %v", r)
	}
	if got := reading.Take(nil); len(got) != 2 {
		t.Fatalf("reading subscriber has %d events, want both", len(got))
	}
	if r := stuck.DropReason(); r != DropSlow {
		t.Fatalf("stuck subscriber: drop reason %v, want slow", r)
	}
	select {
	case <-stuck.Done():
	default:
		t.Fatal("the stuck subscriber was not removed")
	}
}

// TestFilterLaterBatchDoesNotWait: a publish whose batch is filtered while
// an older batch of the same subscriber is still in its filter does not
// wait for it. It returns with its delivery counted, its event is queued
// behind the older one by the older one's publisher, and order holds.
func TestFilterLaterBatchDoesNotWait(t *testing.T) {
	h := NewHub()
	defer h.Close()
	ref := seamTopic("order", 100)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	filter := func(ev *Event) bool {
		if dataOf(ev) == "first" {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
		return true
	}
	sub, _ := subWith(t, h, []TopicRef{ref}, SubscribeOptions{Filter: filter})
	first := make(chan PublishResult, 1)
	go func() {
		res, err := pubMsg(h, ref, Message{Data: "first"})
		if err != nil {
			t.Error(err)
		}
		first <- res
	}()
	<-entered
	if res := mustPub(t, h, ref, Message{Data: "second"}); res.Delivered != 1 {
		t.Fatalf("second publish delivered %d, want 1", res.Delivered)
	}
	if got := sub.Take(nil); len(got) != 0 {
		t.Fatalf("%q was queued before the older event", dataOf(got[0]))
	}
	close(release)
	if res := <-first; res.Delivered != 1 {
		t.Fatalf("first publish delivered %d, want 1", res.Delivered)
	}
	got := sub.Take(nil) // both publishes returned: both queued
	if len(got) != 2 || dataOf(got[0]) != "first" || dataOf(got[1]) != "second" {
		t.Fatalf("queued %d events, want first then second", len(got))
	}
}

// TestFilterPanicDoesNotStall: a filter that panics loses its batch, and
// the subscriber's later batches are still queued.
func TestFilterPanicDoesNotStall(t *testing.T) {
	h := NewHub()
	defer h.Close()
	ref := seamTopic("panic", 100)
	filter := func(ev *Event) bool {
		if dataOf(ev) == "boom" {
			panic("filter bug")
		}
		return true
	}
	sub, _ := subWith(t, h, []TopicRef{ref}, SubscribeOptions{Filter: filter})
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the filter's panic did not reach the publisher")
			}
		}()
		_, _ = pubMsg(h, ref, Message{Data: "boom"})
	}()
	mustPub(t, h, ref, Message{Data: "after"})
	if got := takeN(t, sub, 1); dataOf(got[0]) != "after" {
		t.Fatalf("got %q after the panic, want after", dataOf(got[0]))
	}
}

// TestFilterSeveralEventsInOneCall: a publish of several events stages
// them interleaved across subscribers; each subscriber still gets the ones
// its filter accepts, in order, and each publication counts its own.
func TestFilterSeveralEventsInOneCall(t *testing.T) {
	h := NewHub()
	defer h.Close()
	a, b := seamTopic("a", 100), seamTopic("b", 100)
	onA, _ := subWith(t, h, []TopicRef{a}, SubscribeOptions{Filter: keepFilter})
	onBoth, _ := subWith(t, h, []TopicRef{a, b}, SubscribeOptions{Filter: keepFilter})
	var pubs []Publication
	for i := range 6 {
		meta, ref := "", a
		if i%3 == 1 {
			meta = "drop"
		}
		if i%2 == 1 {
			ref = b
		}
		pubs = append(pubs, Publication{Message: &Message{Data: strconv.Itoa(i), Meta: meta}, Topics: []TopicRef{ref}})
	}
	out, err := h.Publish(context.Background(), pubs, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Events 0..5: 1 and 4 refused; 1, 3 and 5 on b (onBoth only).
	wantDelivered := []int{2, 0, 2, 1, 0, 1}
	for i, r := range out.Results {
		if r.Delivered != wantDelivered[i] {
			t.Errorf("publication %d delivered %d, want %d", i, r.Delivered, wantDelivered[i])
		}
	}
	check := func(name string, s *Subscription, want string) {
		var got []string
		for _, ev := range s.Take(nil) {
			got = append(got, dataOf(ev))
		}
		if g := strings.Join(got, ","); g != want {
			t.Errorf("%s got %s, want %s", name, g, want)
		}
	}
	check("onA", onA, "0,2")
	check("onBoth", onBoth, "0,2,3,5")
}
