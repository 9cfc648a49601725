package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// chunked frames parts as an HTTP/1.1 chunked body, with a chunk
// extension on the first to exercise skipping it.
func chunked(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i == 0 {
			fmt.Fprintf(&b, "%X;ext=1\r\n%s\r\n", len(p), p)
		} else {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
		}
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// feedSplit feeds body to a fresh parser in pieces of cut bytes, and
// returns the lines and the error that ended it.
func feedSplit(t *testing.T, isChunked bool, body string, cut int) ([]string, error) {
	t.Helper()
	p := bodyParser{chunked: isChunked}
	var lines []string
	for len(body) > 0 {
		n := min(cut, len(body))
		err := p.feed([]byte(body[:n]), func(l []byte) { lines = append(lines, string(l)) })
		body = body[n:]
		if err != nil {
			return lines, err
		}
	}
	return lines, nil
}

func TestBodyParserChunkedAtEverySplit(t *testing.T) {
	events := ": hello\n\nid: 1-1\ndata: 0 1 123 xxxx\n\n"
	more := "id: 1-2\r\ndata: 0 2 456 yy\r\n\r\n"
	body := chunked(events[:20], events[20:], more)
	want := []string{": hello", "", "id: 1-1", "data: 0 1 123 xxxx", "", "id: 1-2", "data: 0 2 456 yy", ""}
	for cut := 1; cut <= len(body); cut++ {
		lines, err := feedSplit(t, true, body, cut)
		if !errors.Is(err, errBodyEnded) {
			t.Fatalf("cut %d: err = %v, want the end of the body", cut, err)
		}
		if !slices.Equal(lines, want) {
			t.Fatalf("cut %d: lines = %q, want %q", cut, lines, want)
		}
	}
}

func TestBodyParserUnchunked(t *testing.T) {
	lines, err := feedSplit(t, false, "data: 0 1 2 x\ndata: partial", 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"data: 0 1 2 x"}; !slices.Equal(lines, want) {
		t.Fatalf("lines = %q, want %q (a line without its end is held back)", lines, want)
	}
}

func TestBodyParserRejectsBadChunkSize(t *testing.T) {
	_, err := feedSplit(t, true, "zz\r\ndata: x\n\r\n", 64)
	if err == nil || errors.Is(err, errBodyEnded) {
		t.Fatalf("err = %v, want a malformed chunk error", err)
	}
}

func TestEventData(t *testing.T) {
	cases := []struct {
		line      string
		pub       int
		seq       uint64
		sent      int64
		ok        bool
		rationale string
	}{
		{"data: 3 17 1700000000000000000 xxxx", 3, 17, 1700000000000000000, true, "the publisher's shape"},
		{"data:0 0 5", 0, 0, 5, true, "no space after the colon, nothing after the time"},
		{"data: 1 2", 0, 0, 0, false, "no send time"},
		{"data: 1 2x 3", 0, 0, 0, false, "a field that is not a number"},
		{"id: 1 2 3", 0, 0, 0, false, "not a data line"},
		{"data: 99999999 1 1", 0, 0, 0, false, "publisher index out of any range"},
	}
	for _, c := range cases {
		pub, seq, sent, ok := eventData([]byte(c.line))
		if ok != c.ok || pub != c.pub || seq != c.seq || sent != c.sent {
			t.Errorf("%s: eventData(%q) = %d %d %d %v, want %d %d %d %v",
				c.rationale, c.line, pub, seq, sent, ok, c.pub, c.seq, c.sent, c.ok)
		}
	}
}

func TestEventDataReadsWhatPayloadWrites(t *testing.T) {
	line := append([]byte("data: "), payload(nil, 2, 41, 256)...)
	pub, seq, sent, ok := eventData(line)
	if !ok || pub != 2 || seq != 41 || sent <= 0 {
		t.Fatalf("eventData(payload) = %d %d %d %v", pub, seq, sent, ok)
	}
}
