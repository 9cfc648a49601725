package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// subscriber is one event stream and what it has seen.
type subscriber struct {
	next       []uint64 // next expected sequence number per publisher
	received   int64
	skipped    int64 // sequence numbers jumped over and not (yet) filled
	gaps       []gap // where they are, to tell a late arrival from a repeat
	untracked  int64 // skipped beyond maxGaps gaps: not located
	duplicated int64 // arrived again
	outOfOrder int64 // arrived after a later one, filling a gap
	connect    time.Duration
	// Why and when the stream ended before the run did; endNone while it
	// is open. The tool does not reconnect a dropped subscriber during a
	// measured run: what a reconnect would replay is not what was
	// measured, so everything published after the drop counts as lost.
	end     endReason
	endedAt int64 // unix nanoseconds
	parser  bodyParser
	conn    net.Conn  // HTTP/1.1: the connection, read without net/http's body reader
	early   []byte    // HTTP/1.1: body bytes read along with the headers
	body    io.Reader // HTTP/2: the response body
	closer  io.Closer // ends the stream
}

// dialSubscriber opens one subscription and returns once the response
// headers have arrived (for caddy-sse: once it is registered with the hub).
//
// token, when not "", is presented as a Bearer token (-mode mercure).
func dialSubscriber(ctx context.Context, c *config, subURL, token string, h2 *http.Client, publishers int) (*subscriber, error) {
	s := &subscriber{next: make([]uint64, publishers)}
	start := time.Now()
	var resp *http.Response
	if c.http2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, subURL, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
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
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if err := req.Write(conn); err != nil {
			conn.Close()
			return nil, err
		}
		br := bufio.NewReaderSize(conn, 4<<10)
		if resp, err = http.ReadResponse(br, req); err != nil {
			conn.Close()
			return nil, err
		}
		if checkStream(resp) == nil {
			s.parser.chunked = len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
			s.early, _ = br.Peek(br.Buffered())
			s.early = bytes.Clone(s.early)
			s.conn, s.closer = conn, conn
		} else {
			resp.Body = conn // closed below
		}
	}
	if err := checkStream(resp); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe %s: %v", subURL, err)
	}
	s.connect = time.Since(start)
	return s, nil
}

// checkStream says why resp is not an event stream: anything but a 200
// with Content-Type text/event-stream (a wrong path, a login page, a proxy's
// error page) would otherwise count as a subscriber that simply got nothing.
func checkStream(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s, want 200 OK", resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/event-stream" {
		return fmt.Errorf("answered 200 with Content-Type %q, want text/event-stream", ct)
	}
	return nil
}

// endReason says how a stream ended before the run did.
type endReason uint8

const (
	endNone      endReason = iota
	endEnded               // the server ended the body (last chunk, or the end of an HTTP/2 stream)
	endClosed              // the connection closed without the body's end
	endReset               // a read failed (reset, timeout)
	endMalformed           // the body could not be parsed
)

func (e endReason) String() string {
	return [...]string{"open", "ended", "closed", "reset", "malformed"}[e]
}

// tally is what the readers count while the run goes on, for the settle
// loop to watch.
type tally struct {
	delivered atomic.Int64
	dropped   atomic.Int64
}

// ended records that the stream ended before the run did.
func (s *subscriber) ended(why endReason, t *tally) {
	if s.end == endNone {
		s.end, s.endedAt = why, time.Now().UnixNano()
		t.dropped.Add(1)
	}
}

// read consumes the stream until it ends, on its own goroutine (the reader
// for HTTP/2, and for HTTP/1.1 with -reader goroutine). stopping is set
// before the run closes the streams itself, which is not a drop.
func (s *subscriber) read(hist *histogram, t *tally, stopping *atomic.Bool) {
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
				switch {
				case stopping.Load():
				case err == io.EOF && s.conn == nil:
					s.ended(endEnded, t) // HTTP/2: the server ended the stream
				case err == io.EOF:
					s.ended(endClosed, t)
				default:
					s.ended(endReset, t)
				}
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
		t.delivered.Add(got)
		if errors.Is(err, errBodyEnded) {
			s.ended(endEnded, t)
			return
		} else if err != nil {
			s.ended(endMalformed, t)
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

// gap is a run of sequence numbers [lo, hi) a stream jumped over.
type gap struct {
	pub    int
	lo, hi uint64
}

// maxGaps bounds the gaps remembered per stream, so a lossy run of 10,000
// streams cannot take the tool's memory. Beyond it, skipped numbers are
// counted but not located, and a late arrival that is in none of the
// remembered gaps counts as out of order while such numbers remain (it
// cannot be told from a repeat).
const maxGaps = 1024

// record checks one sequence number against the next expected. The usual
// case (the next one) costs a compare; only a jump or a late arrival does
// more.
func (s *subscriber) record(pub int, seq uint64) {
	next := s.next[pub]
	switch {
	case seq == next:
		s.next[pub] = seq + 1
	case seq > next:
		s.skip(pub, next, seq)
		s.next[pub] = seq + 1
	default:
		s.fill(pub, seq)
	}
}

func (s *subscriber) skip(pub int, lo, hi uint64) {
	s.skipped += int64(hi - lo)
	if len(s.gaps) < maxGaps {
		s.gaps = append(s.gaps, gap{pub, lo, hi})
	} else {
		s.untracked += int64(hi - lo)
	}
}

// fill takes a number below the next expected: out of order if it fills
// a gap, else a repeat.
func (s *subscriber) fill(pub int, seq uint64) {
	for i := range s.gaps {
		g := &s.gaps[i]
		if g.pub != pub || seq < g.lo || seq >= g.hi {
			continue
		}
		s.outOfOrder++
		s.skipped--
		switch {
		case seq == g.lo:
			g.lo++
		case seq == g.hi-1:
			g.hi--
		default: // split around seq
			right := gap{pub, seq + 1, g.hi}
			g.hi = seq
			if len(s.gaps) < maxGaps {
				s.gaps = append(s.gaps, right)
			} else {
				s.untracked += int64(right.hi - right.lo)
			}
			return
		}
		if g.lo == g.hi {
			s.gaps[i] = s.gaps[len(s.gaps)-1]
			s.gaps = s.gaps[:len(s.gaps)-1]
		}
		return
	}
	if s.untracked > 0 {
		s.untracked--
		s.skipped--
		s.outOfOrder++
		return
	}
	s.duplicated++
}

// lost counts events acknowledged to a publisher but never received:
// the gaps left open, and everything after the last one received (all of
// it, for a stream the server dropped).
func (s *subscriber) lost(published []uint64) int64 {
	n := s.skipped
	for p, total := range published {
		if s.next[p] < total {
			n += int64(total - s.next[p])
		}
	}
	return n
}
