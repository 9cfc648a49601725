package main

import (
	"bytes"
	"errors"
	"time"
)

// bodyParser turns the bytes of one response body, as they arrive, into
// SSE lines: it undoes HTTP/1.1 chunked framing itself and keeps only what a
// line split across reads needs. The load tool reads 10,000 streams on the
// same cores as the server it measures, so every byte it copies and every
// buffer it keeps per stream shows up in the server's latency; this parser
// copies nothing for a line that arrives whole.
type bodyParser struct {
	chunked bool
	state   chunkState
	remain  int64  // payload bytes left in the current chunk
	line    []byte // a line split across reads, waiting for its end
}

type chunkState uint8

const (
	chunkSize    chunkState = iota // reading the hex size line
	chunkExt                       // skipping a chunk extension up to LF
	chunkData                      // reading payload
	chunkDataEnd                   // reading the CRLF after the payload
	chunkDone                      // the last chunk came: the body ended
)

var errBodyEnded = errors.New("response body ended")

// feed parses b and calls onLine for each complete line, without its line
// ending. It returns errBodyEnded after the last chunk, and an error for a
// malformed chunk header.
func (p *bodyParser) feed(b []byte, onLine func([]byte)) error {
	if !p.chunked {
		p.payload(b, onLine)
		return nil
	}
	for len(b) > 0 {
		switch p.state {
		case chunkSize:
			c := b[0]
			b = b[1:]
			switch {
			case c == '\r':
			case c == '\n':
				if p.remain == 0 {
					p.state = chunkDone
					return errBodyEnded
				}
				p.state = chunkData
			case c == ';':
				p.state = chunkExt
			default:
				d, ok := hexDigit(c)
				if !ok || p.remain > 1<<40 {
					return errors.New("malformed chunk size line")
				}
				p.remain = p.remain<<4 | d
			}
		case chunkExt:
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				b = b[i:]
				p.state = chunkSize // the LF ends the size line there
			} else {
				b = nil
			}
		case chunkData:
			n := min(int64(len(b)), p.remain)
			p.payload(b[:n], onLine)
			b = b[n:]
			if p.remain -= n; p.remain == 0 {
				p.state = chunkDataEnd
			}
		case chunkDataEnd:
			c := b[0]
			b = b[1:]
			if c == '\n' {
				p.state = chunkSize
			}
		case chunkDone:
			return errBodyEnded
		}
	}
	return nil
}

// payload splits body bytes into lines. Events carry LF line endings (a
// CR before it is dropped); the load tool publishes nothing else.
func (p *bodyParser) payload(b []byte, onLine func([]byte)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			return
		}
		line := b[:i]
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		onLine(bytes.TrimSuffix(line, []byte{'\r'}))
		p.line = p.line[:0]
		b = b[i+1:]
	}
}

func hexDigit(c byte) (int64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int64(c-'A') + 10, true
	}
	return 0, false
}

// eventData reads what the publisher put at the start of each event's data:
// "<publisher> <sequence> <send unix nanoseconds> <padding>". It looks at no
// more of the line than those three numbers.
func eventData(line []byte) (pub int, seq uint64, sent int64, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte("data:"))
	if !found {
		return 0, 0, 0, false
	}
	var n [3]uint64
	for i := range n {
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		digits := 0
		for len(rest) > 0 && '0' <= rest[0] && rest[0] <= '9' && digits < 19 {
			n[i] = n[i]*10 + uint64(rest[0]-'0')
			rest = rest[1:]
			digits++
		}
		if digits == 0 || (len(rest) > 0 && rest[0] != ' ') {
			return 0, 0, 0, false
		}
	}
	if n[0] > 1<<20 {
		return 0, 0, 0, false
	}
	return int(n[0]), n[1], int64(n[2]), true
}

// deliver records one received event for s; hist may be shared by the
// subscribers one reader serves.
func (s *subscriber) deliver(line []byte, now int64, hist *histogram) bool {
	pub, seq, sent, ok := eventData(line)
	if !ok || pub >= len(s.next) {
		return false
	}
	s.record(pub, seq)
	hist.add(time.Duration(now - sent))
	s.received++
	return true
}
