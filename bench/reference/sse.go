//go:build linux

package main

import (
	"bytes"
	"strconv"
)

// appendFrame encodes one event as subscribers receive it: its id, its
// name if it has one, and a data line per line of data.
func appendFrame(dst []byte, id uint64, event, data []byte) []byte {
	dst = append(dst, "id: "...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, '\n')
	if len(event) > 0 {
		dst = append(append(append(dst, "event: "...), event...), '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		dst = append(append(append(dst, "data: "...), line...), '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(dst, '\n')
}

// eventParser reads the events of a held text/event-stream publish as its
// bytes arrive. Lines end with LF (a CR before it is dropped). Only data
// and event matter: the server numbers events itself, so id is ignored,
// as are retry, comments and unknown fields.
type eventParser struct {
	line    []byte // a line split across reads
	event   []byte
	data    []byte
	hasData bool
}

var errEventTooLarge = &httpError{413, "an event larger than 256 KiB"}

// feed parses b and calls emit for every event it completes.
func (p *eventParser) feed(b []byte, emit func(event, data []byte)) *httpError {
	for len(b) > 0 {
		line, rest, complete := bytes.Cut(b, []byte{'\n'})
		if !complete {
			if len(p.line)+len(b) > maxEvent {
				return errEventTooLarge
			}
			p.line = append(p.line, b...)
			return nil
		}
		b = rest
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		if err := p.field(bytes.TrimSuffix(line, []byte{'\r'}), emit); err != nil {
			return err
		}
		p.line = p.line[:0]
	}
	return nil
}

func (p *eventParser) field(line []byte, emit func(event, data []byte)) *httpError {
	if len(line) == 0 { // a blank line ends the event
		if p.hasData {
			emit(p.event, p.data)
		}
		p.event, p.data, p.hasData = p.event[:0], p.data[:0], false
		return nil
	}
	name, value, _ := bytes.Cut(line, []byte{':'})
	value = bytes.TrimPrefix(value, []byte{' '})
	switch string(name) {
	case "data":
		if p.hasData {
			p.data = append(p.data, '\n')
		}
		p.data, p.hasData = append(p.data, value...), true
		if len(p.data) > maxEvent {
			return errEventTooLarge
		}
	case "event":
		p.event = append(p.event[:0], value...)
	}
	return nil
}

// bodyReader takes a request body's framing off as its bytes arrive:
// Content-Length, or chunked.
type bodyReader struct {
	chunked bool
	remain  int64 // Content-Length: bytes left; chunked: bytes left in the chunk
	state   chunkState
	digits  int // of the chunk size being read
	lineLen int // of a chunk extension or trailer line, to bound it
}

type chunkState uint8

const (
	chunkSize     chunkState = iota // the hex size line
	chunkExt                        // a chunk extension, skipped to LF
	chunkData                       // payload
	chunkDataEnd                    // the CRLF after the payload
	chunkTrailers                   // after the last chunk: trailer lines up to a blank one
)

var errChunk = &httpError{400, "malformed chunked body"}

// read consumes body bytes from b, hands the payload to sink, and reports
// how many bytes it used and whether the body ended there.
func (r *bodyReader) read(b []byte, sink func([]byte) *httpError) (used int, done bool, err *httpError) {
	if !r.chunked {
		k := int(min(int64(len(b)), r.remain))
		r.remain -= int64(k)
		if err := sink(b[:k]); err != nil {
			return k, false, err
		}
		return k, r.remain == 0, nil
	}
	for used < len(b) {
		c := b[used]
		switch r.state {
		case chunkSize, chunkExt:
			used++
			switch {
			case c == '\n':
				if r.digits == 0 {
					return used, false, errChunk
				}
				r.digits, r.lineLen = 0, 0
				r.state = chunkData
				if r.remain == 0 {
					r.state = chunkTrailers
				}
			case r.state == chunkExt || c == '\r':
				if r.lineLen++; r.lineLen > 4096 {
					return used, false, errChunk
				}
			case c == ';' || c == ' ' || c == '\t':
				r.state = chunkExt
			default:
				d := hexValue(c)
				if d < 0 || r.digits == 15 {
					return used, false, errChunk
				}
				r.remain, r.digits = r.remain<<4|int64(d), r.digits+1
			}
		case chunkData:
			k := int(min(int64(len(b)-used), r.remain))
			r.remain -= int64(k)
			if err := sink(b[used : used+k]); err != nil {
				return used + k, false, err
			}
			if used += k; r.remain == 0 {
				r.state = chunkDataEnd
			}
		case chunkDataEnd:
			used++
			switch c {
			case '\r':
			case '\n':
				r.state = chunkSize
			default:
				return used, false, errChunk
			}
		case chunkTrailers:
			used++
			switch {
			case c == '\n' && r.lineLen == 0:
				r.state = chunkSize // ready for the next body
				return used, true, nil
			case c == '\n':
				r.lineLen = 0
			case c != '\r':
				if r.lineLen++; r.lineLen > 4096 {
					return used, false, errChunk
				}
			}
		}
	}
	return used, false, nil
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
