package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	acked    []uint64 // events acknowledged per publisher
	elapsed  time.Duration
	requests pubCounts
	latency  histogram // round trips of answered requests, accepted or not
}

// pubCounts counts one publisher's requests by outcome.
type pubCounts struct {
	accepted int64         // answered 2xx
	rejected map[int]int64 // answered otherwise, by status
	errors   int64         // not answered: the connection failed
	waited   time.Duration // sleeping out Retry-After before retrying
}

func (c *pubCounts) add(o pubCounts) {
	c.accepted += o.accepted
	c.errors += o.errors
	c.waited += o.waited
	for st, n := range o.rejected {
		if c.rejected == nil {
			c.rejected = map[int]int64{}
		}
		c.rejected[st] += n
	}
}

// poster sends one publisher's requests and keeps its counts; it is used by
// one goroutine.
type poster struct {
	client *http.Client
	until  time.Time
	counts pubCounts
	hist   histogram
	timed  bool // record round trips (not for a held stream: its one request lasts the run)
}

// post sends req and reports whether it was accepted. A refusal that
// carries Retry-After (a 503 or 429 telling publishers to back off) is
// waited out, up to the end of the run, before the caller retries; the
// refusal and the wait are both counted.
func (p *poster) post(ctx context.Context, req *http.Request) bool {
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		p.counts.errors++
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if p.timed {
		p.hist.add(time.Since(start))
	}
	if resp.StatusCode/100 == 2 {
		p.counts.accepted++
		return true
	}
	if p.counts.rejected == nil {
		p.counts.rejected = map[int]int64{}
	}
	p.counts.rejected[resp.StatusCode]++
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		wait := min(time.Duration(secs)*time.Second, time.Until(p.until))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			p.counts.waited += wait
		}
	}
	return false
}

// over reports whether the run's publishing time is up. Tokens the pacer
// buffered are not spent after it: a publisher that waited out a
// Retry-After until the end would otherwise send them all at once.
func (p *poster) over() bool { return !time.Now().Before(p.until) }

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
			ps := &poster{client: client, until: until, timed: c.mode != "stream"}
			var acked uint64
			switch c.mode {
			case "stream":
				acked = publishStream(ctx, c, ps, tokens)
			case "batch":
				acked = publishBatches(ctx, c, ps, p, tokens)
			default:
				acked = publishEach(ctx, c, ps, p, tokens)
			}
			mu.Lock()
			res.acked[p] = acked
			res.requests.add(ps.counts)
			res.latency.merge(&ps.hist)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// publishEach sends one event per POST with a raw body, the shape both
// caddy-sse (text/plain) and Nchan accept, or (-mode mercure) a Mercure
// form.
func publishEach(ctx context.Context, c *config, ps *poster, pub int, tokens <-chan struct{}) uint64 {
	var seq uint64
	buf := make([]byte, 0, c.size)
	var form []byte // -mode mercure: the form body, reused
	for range tokens {
		if ps.over() {
			break
		}
		buf = payload(buf, pub, seq, c.size)
		var req *http.Request
		if c.mode == "mercure" {
			req = c.mercure.request(ctx, c.pubURL, buf, &form)
		} else {
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, c.pubURL, bytes.NewReader(buf))
			req.Header.Set("Content-Type", "text/plain")
			if c.event != "" {
				req.Header.Set("X-EventSource-Event", c.event) // Nchan's way to name events
			}
		}
		if !ps.post(ctx, req) {
			if ctx.Err() != nil {
				break
			}
			continue // not acknowledged: the same sequence number is used again
		}
		seq++
	}
	return seq
}

type jsonEvent struct {
	Topic string `json:"topic"`
	Event string `json:"event,omitempty"`
	Data  string `json:"data"`
}

// publishBatches sends JSON arrays of c.batch events.
func publishBatches(ctx context.Context, c *config, ps *poster, pub int, tokens <-chan struct{}) uint64 {
	u, _ := url.Parse(c.pubURL)
	topic := u.Query().Get("topic")
	var seq uint64
	buf := make([]byte, 0, c.size)
	batch := make([]jsonEvent, 0, c.batch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		body, _ := json.Marshal(batch)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.pubURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if !ps.post(ctx, req) {
			seq -= uint64(len(batch)) // resend the same numbers
		}
		batch = batch[:0]
	}
	for range tokens {
		if ps.over() {
			break
		}
		buf = payload(buf, pub, seq, c.size)
		batch = append(batch, jsonEvent{Topic: topic, Event: c.event, Data: string(buf)})
		seq++
		if len(batch) == c.batch {
			flush()
		}
	}
	flush()
	return seq
}

// publishStream holds one text/event-stream body open and writes every
// event into it; caddy-sse publishes each as soon as it is parsed. The
// acknowledged count is the "published" of caddy-sse's summary answer
// ({"published":n,"first_id":...,"last_id":...,"delivered":sum}), which it
// also sends, with an error, when the stream ends early.
func publishStream(ctx context.Context, c *config, ps *poster, tokens <-chan struct{}) uint64 {
	pr, pw := io.Pipe()
	done := make(chan uint64, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.pubURL, pr)
		req.Header.Set("Content-Type", "text/event-stream")
		n := ps.postStream(req)
		pr.CloseWithError(errors.New("the publish request ended")) // unblock the writer
		done <- n
	}()
	var seq uint64
	buf := make([]byte, 0, c.size+32)
	frame := make([]byte, 0, c.size+32)
	for range tokens {
		if ps.over() {
			break
		}
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
	return <-done
}

// postStream sends a held-stream publish and returns the "published" of
// its summary answer, counting the request as post does (an answer that
// cannot be read counts as not answered).
func (p *poster) postStream(req *http.Request) uint64 {
	resp, err := p.client.Do(req)
	if err != nil {
		p.counts.errors++
		return 0
	}
	defer resp.Body.Close()
	var sum struct {
		Published uint64 `json:"published"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sum); err != nil {
		p.counts.errors++
		return 0
	}
	if resp.StatusCode/100 == 2 {
		p.counts.accepted++
	} else {
		if p.counts.rejected == nil {
			p.counts.rejected = map[int]int64{}
		}
		p.counts.rejected[resp.StatusCode]++
	}
	return sum.Published
}
