package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// subscriber is one event stream and what it has seen.
type subscriber struct {
	next     []uint64 // next expected sequence number per publisher
	received int64
	skipped  int64 // sequence numbers jumped over
	late     int64 // arrived after a later one: repeated or out of order
	hist     histogram
	connect  time.Duration
	body     io.ReadCloser
	counter  *atomic.Int64 // shared count of deliveries, for the settle wait
}

// dialSubscriber opens one subscription and returns once the response
// headers have arrived (for caddy-sse: once it is registered with the hub).
func dialSubscriber(ctx context.Context, c *config, subURL string, h2 *http.Client, publishers int, counter *atomic.Int64) (*subscriber, error) {
	s := &subscriber{next: make([]uint64, publishers), counter: counter}
	start := time.Now()
	var resp *http.Response
	if c.http2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, subURL, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/event-stream")
		if resp, err = h2.Do(req); err != nil {
			return nil, err
		}
	} else {
		// A bare connection and http.ReadResponse: no Transport goroutines
		// per subscriber, so the tool stays small next to the server.
		u, err := url.Parse(subURL)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", hostPort(u))
		if err != nil {
			return nil, err
		}
		req, _ := http.NewRequest(http.MethodGet, subURL, nil)
		req.Header.Set("Accept", "text/event-stream")
		if err := req.Write(conn); err != nil {
			conn.Close()
			return nil, err
		}
		br := bufio.NewReaderSize(conn, 16<<10)
		if resp, err = http.ReadResponse(br, req); err != nil {
			conn.Close()
			return nil, err
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{resp.Body, conn}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe: %s", resp.Status)
	}
	s.connect = time.Since(start)
	s.body = resp.Body
	return s, nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func http2Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
	}}
}

// read consumes the stream until it ends. Only data lines matter: each
// carries "<publisher> <sequence> <send unix nanoseconds> <padding>".
func (s *subscriber) read() {
	br := bufio.NewReaderSize(s.body, 32<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		now := time.Now().UnixNano()
		f := bytes.Fields(line[5:])
		if len(f) < 3 {
			continue
		}
		pub, err1 := strconv.Atoi(string(f[0]))
		seq, err2 := strconv.ParseUint(string(f[1]), 10, 64)
		sent, err3 := strconv.ParseInt(string(f[2]), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || pub < 0 || pub >= len(s.next) {
			continue
		}
		s.record(pub, seq)
		s.hist.add(time.Duration(now - sent))
		s.received++
		s.counter.Add(1)
	}
}

// record checks one sequence number against the next expected. Without
// remembering every id it cannot tell a repeat from a late arrival, so both
// count as late; either way the hub broke its ordering promise.
func (s *subscriber) record(pub int, seq uint64) {
	next := s.next[pub]
	switch {
	case seq == next:
		s.next[pub] = seq + 1
	case seq > next:
		s.skipped += int64(seq - next)
		s.next[pub] = seq + 1
	default:
		s.late++
	}
}

// lost counts events published but never received, given how many each
// publisher had acknowledged.
func (s *subscriber) lost(published []uint64) int64 {
	n := s.skipped - s.late // a late arrival may fill an earlier gap
	for p, total := range published {
		if s.next[p] < total {
			n += int64(total - s.next[p])
		}
	}
	return max(n, 0)
}
