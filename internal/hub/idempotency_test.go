package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func keyedPublish(t *testing.T, h *Hub, key string, data ...string) (PublishOutcome, error) {
	t.Helper()
	ref := TopicRef{Name: "news", Ring: RingConfig{Replay: 100, ReplaySize: DefaultReplaySize}}
	var pubs []Publication
	for _, d := range data {
		pubs = append(pubs, Publication{Message: &Message{Topics: []string{"news"}, Data: d}, Topics: []TopicRef{ref}})
	}
	return h.Publish(context.Background(), pubs, PublishOptions{IdempotencyKey: key})
}

func TestHubIdempotentReplay(t *testing.T) {
	h := NewHub()
	ref := TopicRef{Name: "news", Ring: RingConfig{Replay: 100, ReplaySize: DefaultReplaySize}}
	sub, _, err := h.Subscribe([]TopicRef{ref}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	first, err := keyedPublish(t, h, "k1", "a", "b")
	if err != nil || first.Replayed || len(first.Results) != 2 || first.Results[0].Delivered != 1 {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := keyedPublish(t, h, "k1", "a", "b")
	if err != nil || !again.Replayed || fmt.Sprint(again.Results) != fmt.Sprint(first.Results) {
		t.Fatalf("retry: %+v %v, want the original %+v replayed", again, err, first.Results)
	}
	if st := h.Stats(); st.Published != 2 {
		t.Fatalf("published %d events, want 2", st.Published)
	}
	if got := sub.Take(nil); len(got) != 2 {
		t.Fatalf("subscriber got %d events, want 2", len(got))
	}
	// Another key publishes; the same key with another body is refused.
	if out, err := keyedPublish(t, h, "k2", "a", "b"); err != nil || out.Replayed {
		t.Fatalf("another key: %+v %v", out, err)
	}
	if _, err := keyedPublish(t, h, "k1", "a", "c"); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("same key, other body: %v, want ErrIdempotencyConflict", err)
	}
	if st := h.Stats(); st.Published != 4 {
		t.Fatalf("published %d events, want 4", st.Published)
	}
}

// A duplicate that arrives while the first is publishing waits for it
// and answers its result; nothing is published twice.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	var s idempotencyStore
	release := make(chan struct{})
	started := make(chan struct{})
	calls := 0
	publish := func() ([]PublishResult, error) {
		calls++
		close(started)
		<-release
		return []PublishResult{{ID: "e-7", Delivered: 3}}, nil
	}
	var wg sync.WaitGroup
	outs := make([]PublishOutcome, 5)
	errs := make([]error, 5)
	wg.Add(1)
	go func() {
		defer wg.Done()
		outs[0], errs[0] = s.do(context.Background(), "k", "fp", publish)
	}()
	<-started
	for i := 1; i < len(outs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = s.do(context.Background(), "k", "fp", publish)
		}()
	}
	// A duplicate whose context ends first is told the key is in progress.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.do(ctx, "k", "fp", publish); !errors.Is(err, ErrIdempotencyInProgress) {
		t.Fatalf("a waiter whose context ended: %v", err)
	}
	// Another body under the running key is refused at once.
	if _, err := s.do(context.Background(), "k", "other", publish); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("another body while running: %v", err)
	}
	close(release)
	wg.Wait()
	if calls != 1 {
		t.Fatalf("published %d times", calls)
	}
	for i := range outs {
		if errs[i] != nil || len(outs[i].Results) != 1 || outs[i].Results[0].ID != "e-7" || outs[i].Replayed != (i > 0) {
			t.Fatalf("call %d: %+v %v", i, outs[i], errs[i])
		}
	}
}

// A failed publish forgets its key: the retry publishes.
func TestIdempotencyFailureForgetsKey(t *testing.T) {
	var s idempotencyStore
	boom := errors.New("boom")
	if _, err := s.do(context.Background(), "k", "fp", func() ([]PublishResult, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	out, err := s.do(context.Background(), "k", "fp", func() ([]PublishResult, error) { return []PublishResult{{ID: "e-1"}}, nil })
	if err != nil || out.Replayed || out.Results[0].ID != "e-1" {
		t.Fatalf("retry after a failure: %+v %v", out, err)
	}
}

// Keys live for the window and at most the configured count are kept.
func TestIdempotencyWindowAndBound(t *testing.T) {
	cur := time.Unix(1_700_000_000, 0)
	saved := now
	now = func() time.Time { return cur }
	t.Cleanup(func() { now = saved })

	h := NewHub()
	h.SetIdempotency(time.Minute, 3)
	first, _ := keyedPublish(t, h, "k", "a")
	cur = cur.Add(59 * time.Second)
	if out, _ := keyedPublish(t, h, "k", "a"); !out.Replayed {
		t.Fatal("replayed not within the window")
	}
	cur = cur.Add(time.Second)
	out, _ := keyedPublish(t, h, "k", "a")
	if out.Replayed || out.Results[0].ID == first.Results[0].ID {
		t.Fatalf("a key past its window was replayed: %+v", out)
	}
	// k is now the oldest of k, k2, k3; a fourth key forgets it.
	for _, k := range []string{"k2", "k3", "k4"} {
		if _, err := keyedPublish(t, h, k, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if h.idem.order.Len() != 3 || len(h.idem.entries) != 3 {
		t.Fatalf("%d keys kept (%d in the map), want 3", h.idem.order.Len(), len(h.idem.entries))
	}
	if out, _ := keyedPublish(t, h, "k", "a"); out.Replayed {
		t.Fatal("the evicted oldest key was replayed")
	}
	if out, _ := keyedPublish(t, h, "k4", "a"); !out.Replayed {
		t.Fatal("a kept key was not replayed")
	}
	// Everything expires in time, oldest first, at O(1) per call.
	cur = cur.Add(2 * time.Minute)
	keyedPublish(t, h, "k5", "a")
	if h.idem.order.Len() != 1 || len(h.idem.entries) != 1 {
		t.Fatalf("after the window %d keys kept, want 1", h.idem.order.Len())
	}
}

func TestValidIdempotencyKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"a": true, "order-42:retry": true, "with space": true, strings.Repeat("k", 128): true,
		"": false, strings.Repeat("k", 129): false, "tab\there": false, "caf\u00e9": false, "nul\x00": false, "del\x7f": false,
	} {
		if ValidIdempotencyKey(key) != ok {
			t.Errorf("ValidIdempotencyKey(%q) = %v, want %v", key, !ok, ok)
		}
	}
}
