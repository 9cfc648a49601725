package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// idReader reads an event stream's id lines as fast as it can, without
// decoding events: a subscriber that keeps up with a flood.
type idReader struct {
	ids  []string
	err  error
	done chan struct{}
}

func readIDs(ctx context.Context, t *testing.T, url string, until func(n int) bool) *idReader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := &idReader{done: make(chan struct{})}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	if line, err := br.ReadString('\n'); err != nil || line != ": caddy-sse\n" {
		t.Fatalf("opening %q: %v", line, err)
	}
	go func() {
		defer close(r.done)
		defer resp.Body.Close()
		for !until(len(r.ids)) {
			line, err := br.ReadSlice('\n')
			if err != nil {
				r.err = err
				return
			}
			if bytes.HasPrefix(line, []byte("id: ")) {
				r.ids = append(r.ids, string(bytes.TrimSpace(line[4:])))
			}
		}
	}()
	return r
}

// Publishers outpace the writers (arrays of 25 events from 8 connections
// at once, queue 4): publishing slows down or is refused with 503, and
// every subscriber, all of them reading, gets exactly the events of the
// accepted publishes, in order. Before publishers felt the overload, every
// subscriber was dropped within the first publishes.
func TestOverloadReadersAreNotDropped(t *testing.T) {
	const subscribers, publishers, rounds, batch = 10, 8, 30, 25
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic flood
		queue 4
	}
	sse_publish /publish {
		overload_wait 20ms
	}
}
`)
	ctx := testCtx(t)

	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		refused  int
		total    = publishers * rounds * batch
	)
	var acceptedCount func() int
	finished := make(chan struct{})
	readers := make([]*idReader, subscribers)
	for i := range readers {
		readers[i] = readIDs(ctx, t, c.base+"/events?topic=flood", func(n int) bool {
			select {
			case <-finished:
				return n >= acceptedCount()
			default:
				return n >= total
			}
		})
	}
	acceptedCount = func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted)
	}

	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			events := make([]map[string]any, batch)
			for r := 0; r < rounds; r++ {
				for i := range events {
					events[i] = map[string]any{"topic": "flood", "data": fmt.Sprintf("p%d-%d-%d", p, r, i)}
				}
				body, _ := json.Marshal(events)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/publish", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					var res []publishResult
					if err := json.Unmarshal(answer, &res); err != nil || len(res) != batch {
						t.Errorf("answer %s: %v", answer, err)
						return
					}
					mu.Lock()
					for _, r := range res {
						accepted[r.ID] = true
					}
					mu.Unlock()
				case http.StatusServiceUnavailable:
					if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(answer), `"error"`) {
						t.Errorf("503 without Retry-After or a JSON error: %v %s", resp.Header, answer)
					}
					mu.Lock()
					refused++
					mu.Unlock()
				default:
					t.Errorf("publish answered %d %s", resp.StatusCode, answer)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	close(finished)
	want := acceptedCount()
	for i, r := range readers {
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("subscriber %d has %d of %d events after 30s", i, len(r.ids), want)
		}
		if len(r.ids) < want {
			t.Fatalf("subscriber %d: stream ended after %d of %d events: %v", i, len(r.ids), want, r.err)
		}
		for _, id := range r.ids {
			if !accepted[id] {
				t.Fatalf("subscriber %d got %s, which no accepted publish returned", i, id)
			}
		}
		if !slices.IsSortedFunc(r.ids, idOrder) || len(slices.Compact(slices.Clone(r.ids))) != len(r.ids) {
			t.Fatalf("subscriber %d: ids out of order or repeated", i)
		}
	}
	st := c.stats(t, "default")
	if st.DroppedSlow != 0 || st.Subscribers != 0 && st.Subscribers != subscribers {
		t.Fatalf("stats after the flood: %+v", st)
	}
	t.Logf("%d events accepted, %d publishes of %d refused with 503; %d subscribers got them all",
		want, refused, publishers*rounds, subscribers)
}

// idOrder orders ids of one epoch by their sequence number.
func idOrder(a, b string) int {
	sa, sb := a[strings.LastIndexByte(a, '-')+1:], b[strings.LastIndexByte(b, '-')+1:]
	if len(sa) != len(sb) {
		return len(sa) - len(sb)
	}
	return strings.Compare(sa, sb)
}

// A JSON array larger than the queue reaches a reading subscriber whole.
func TestOverloadArrayLargerThanQueue(t *testing.T) {
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish
}
`)
	const n = 300 // the default queue is 256
	r := readIDs(testCtx(t), t, c.base+"/events?topic=news", func(got int) bool { return got >= n })
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = map[string]any{"topic": "news", "data": seqData(i)}
	}
	body, _ := json.Marshal(events)
	status, answer := post(t, client, c.base+"/publish", "application/json", bytes.NewReader(body))
	mustStatus(t, "publishing 300 events", status, http.StatusOK, answer)
	var res []publishResult
	if err := json.Unmarshal(answer, &res); err != nil {
		t.Fatal(err)
	}
	for i, pr := range res {
		if pr.Delivered != 1 {
			t.Fatalf("event %d delivered to %d subscribers, want 1", i, pr.Delivered)
		}
	}
	select {
	case <-r.done:
	case <-time.After(eventWait):
	}
	if len(r.ids) != n {
		t.Fatalf("subscriber got %d of %d events (%v)", len(r.ids), n, r.err)
	}
	if st := c.stats(t, "default"); st.DroppedSlow != 0 {
		t.Fatalf("dropped_slow = %d", st.DroppedSlow)
	}
}
