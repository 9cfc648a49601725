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
	"sync/atomic"
	"time"
)

// subscriber is one event stream and what it has seen.
type subscriber struct {
	next     []uint64 // next expected sequence number per publisher
	received int64
	skipped  int64 // sequence numbers jumped over
	late     int64 // arrived after a later one: repeated or out of order
	connect  time.Duration
	parser   bodyParser
	conn     net.Conn  // HTTP/1.1: the connection, read without net/http's body reader
	early    []byte    // HTTP/1.1: body bytes read along with the headers
	body     io.Reader // HTTP/2: the response body
	closer   io.Closer // ends the stream
}

// dialSubscriber opens one subscription and returns once the response
// headers have arrived (for caddy-sse: once it is registered with the hub).
func dialSubscriber(ctx context.Context, c *config, subURL string, h2 *http.Client, publishers int) (*subscriber, error) {
	s := &subscriber{next: make([]uint64, publishers)}
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
		s.body, s.closer = resp.Body, resp.Body
	} else {
		// A bare connection and http.ReadResponse for the headers only:
		// no Transport goroutines and no body reader per subscriber, so
		// the tool stays small next to the server.
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
		br := bufio.NewReaderSize(conn, 4<<10)
		if resp, err = http.ReadResponse(br, req); err != nil {
			conn.Close()
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			s.parser.chunked = len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
			s.early, _ = br.Peek(br.Buffered())
			s.early = bytes.Clone(s.early)
			s.conn, s.closer = conn, conn
		} else {
			resp.Body = conn
		}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe: %s", resp.Status)
	}
	s.connect = time.Since(start)
	return s, nil
}

// read consumes the stream until it ends, on its own goroutine (the reader
// for HTTP/2, and for HTTP/1.1 with -reader goroutine).
func (s *subscriber) read(hist *histogram, counter *atomic.Int64) {
	src := s.body
	if s.conn != nil {
		src = s.conn
	}
	buf := make([]byte, 4<<10)
	pending := s.early
	s.early = nil
	for {
		if len(pending) == 0 {
			n, err := src.Read(buf)
			if n == 0 && err != nil {
				return
			}
			pending = buf[:n]
		}
		now := time.Now().UnixNano()
		var got int64
		err := s.parser.feed(pending, func(line []byte) {
			if s.deliver(line, now, hist) {
				got++
			}
		})
		pending = nil
		counter.Add(got)
		if err != nil {
			return
		}
	}
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
