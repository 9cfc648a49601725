package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// payload renders one event's data: publisher, sequence and send time, then
// padding up to size bytes.
func payload(buf []byte, pub int, seq uint64, size int) []byte {
	buf = buf[:0]
	buf = strconv.AppendInt(buf, int64(pub), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
	buf = append(buf, ' ')
	for len(buf) < size {
		buf = append(buf, 'x')
	}
	return buf
}

// pacer hands out one token per event at the configured rate; rate 0 means
// no pacing. Publishers that fall behind simply find tokens waiting, so the
// offered rate is kept as long as they can keep up.
func pacer(ctx context.Context, rate float64, until time.Time) <-chan struct{} {
	// A small buffer: publishers that fall behind do not find a backlog
	// to work off after the deadline, so the run ends on time and the
	// achieved rate is reported honestly.
	tokens := make(chan struct{}, 64)
	go func() {
		defer close(tokens)
		if rate <= 0 {
			for time.Now().Before(until) {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			return
		}
		start := time.Now()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var sent int64
		for now := range tick.C {
			if now.After(until) || ctx.Err() != nil {
				return
			}
			due := int64(rate * now.Sub(start).Seconds())
			for ; sent < due && time.Now().Before(until); sent++ {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return tokens
}

// publishResult is what the publishers achieved.
type publishResult struct {
	acked   []uint64 // events acknowledged per publisher
	elapsed time.Duration
	errors  int64
}

func publish(ctx context.Context, c *config) publishResult {
	until := time.Now().Add(c.duration)
	tokens := pacer(ctx, c.rate, until)
	n := c.publishers
	if c.mode == "stream" {
		n = 1
	}
	res := publishResult{acked: make([]uint64, n)}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n, DisableCompression: true}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for p := 0; p < n; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var acked uint64
			var errs int64
			switch c.mode {
			case "stream":
				acked, errs = publishStream(ctx, c, client, tokens)
			case "batch":
				acked, errs = publishBatches(ctx, c, client, p, tokens)
			default:
				acked, errs = publishEach(ctx, c, client, p, tokens)
			}
			mu.Lock()
			res.acked[p] = acked
			res.errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// publishEach sends one event per POST with a raw body, the shape both
// caddy-sse (text/plain) and Nchan accept.
func publishEach(ctx context.Context, c *config, client *http.Client, pub int, tokens <-chan struct{}) (uint64, int64) {
	var seq uint64
	var errs int64
	buf := make([]byte, 0, c.size)
	for range tokens {
		buf = payload(buf, pub, seq, c.size)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.pubURL, bytes.NewReader(buf))
		req.Header.Set("Content-Type", "text/plain")
		if c.event != "" {
			req.Header.Set("X-EventSource-Event", c.event) // Nchan's way to name events
		}
		if err := do(client, req); err != nil {
			errs++
			if ctx.Err() != nil {
				break
			}
			continue // not acknowledged: the same sequence number is used again
		}
		seq++
	}
	return seq, errs
}

type jsonEvent struct {
	Topic string `json:"topic"`
	Event string `json:"event,omitempty"`
	Data  string `json:"data"`
}

// publishBatches sends JSON arrays of c.batch events.
func publishBatches(ctx context.Context, c *config, client *http.Client, pub int, tokens <-chan struct{}) (uint64, int64) {
	u, _ := url.Parse(c.pubURL)
	topic := u.Query().Get("topic")
	var seq uint64
	var errs int64
	buf := make([]byte, 0, c.size)
	batch := make([]jsonEvent, 0, c.batch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		body, _ := json.Marshal(batch)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.pubURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if err := do(client, req); err != nil {
			errs++
			seq -= uint64(len(batch)) // resend the same numbers
		}
		batch = batch[:0]
	}
	for range tokens {
		buf = payload(buf, pub, seq, c.size)
		batch = append(batch, jsonEvent{Topic: topic, Event: c.event, Data: string(buf)})
		seq++
		if len(batch) == c.batch {
			flush()
		}
	}
	flush()
	return seq, errs
}

// publishStream holds one text/event-stream body open and writes every
// event into it; caddy-sse publishes each as soon as it is parsed. The
// acknowledged count is the "published" of caddy-sse's summary answer
// ({"published":n,"first_id":...,"last_id":...,"delivered":sum}), which it
// also sends, with an error, when the stream ends early.
func publishStream(ctx context.Context, c *config, client *http.Client, tokens <-chan struct{}) (uint64, int64) {
	pr, pw := io.Pipe()
	type answer struct {
		published uint64
		err       error
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.pubURL, pr)
		req.Header.Set("Content-Type", "text/event-stream")
		n, err := doStream(client, req)
		pr.CloseWithError(errors.New("the publish request ended")) // unblock the writer
		done <- answer{n, err}
	}()
	var seq uint64
	buf := make([]byte, 0, c.size+32)
	frame := make([]byte, 0, c.size+32)
	for range tokens {
		buf = payload(buf, 0, seq, c.size)
		frame = frame[:0]
		if c.event != "" {
			frame = append(append(append(frame, "event: "...), c.event...), '\n')
		}
		frame = append(append(append(frame, "data: "...), buf...), "\n\n"...)
		if _, err := pw.Write(frame); err != nil {
			break
		}
		seq++
	}
	pw.Close()
	a := <-done
	if a.err != nil || a.published != seq {
		return a.published, 1
	}
	return a.published, 0
}

// doStream sends a held-stream publish and reads its summary answer.
func doStream(client *http.Client, req *http.Request) (uint64, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum struct {
		Published uint64 `json:"published"`
		Error     string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sum); err != nil {
		return 0, fmt.Errorf("publish: %s: unreadable answer: %v", resp.Status, err)
	}
	if resp.StatusCode/100 != 2 {
		return sum.Published, fmt.Errorf("publish: %s: %s", resp.Status, sum.Error)
	}
	return sum.Published, nil
}

func do(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: %s", resp.Status)
	}
	return nil
}
