package caddysse

// Fuzz targets for the Caddy-free core: the publish body parsers, the
// Last-Event-ID parser and the wire encoder. Each has a committed seed corpus
// in testdata/fuzz/<FuzzName>/; `go test` runs those seeds as ordinary tests
// and `bash .ci/fuzz` fuzzes each target for a while.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/tmaxmax/go-sse"
)

// fuzzTopics are the topics a text/event-stream publish resolves to.
var fuzzTopics = []string{"t"}

// fuzzLimit maps a fuzzed number to a max_event of 1 B to 64 KiB, so the
// fuzzer explores the limit's edges as well as the formats; 65535 stands for
// the largest max_event a JSON config accepts (any positive int64).
func fuzzLimit(v uint16) int64 {
	if v == math.MaxUint16 {
		return math.MaxInt64
	}
	return int64(v) + 1
}

// fuzzCheckAccepted checks what every accepted message must satisfy: it
// would pass the hub's validation and fits max_event.
func fuzzCheckAccepted(t *testing.T, how string, msgs []*hub.Message, maxEvent int64) {
	t.Helper()
	for i, m := range msgs {
		if m == nil {
			t.Fatalf("%s: message %d is nil", how, i)
		}
		if err := hub.ValidateMessage(m); err != nil {
			t.Fatalf("%s: message %d was accepted but fails ValidateMessage: %v\nmessage: %s", how, i, err, fuzzDescribeMsg(m))
		}
		if int64(len(m.Data)) > maxEvent {
			t.Fatalf("%s: message %d has %d bytes of data; max_event is %d", how, i, len(m.Data), maxEvent)
		}
		if m.Retry%time.Millisecond != 0 {
			t.Fatalf("%s: message %d has retry %v, not whole milliseconds", how, i, m.Retry)
		}
	}
}

// fuzzCheckErr checks that a rejection is a *PublishError with a 4xx status
// and a message, and returns its status.
func fuzzCheckErr(t *testing.T, how string, err error) int {
	t.Helper()
	var pe *PublishError
	if !errors.As(err, &pe) || pe == nil {
		t.Fatalf("%s: error %T %v is not a *PublishError", how, err, err)
	}
	if pe.Status < 400 || pe.Status > 499 {
		t.Fatalf("%s: error status %d (%s), want 4xx", how, pe.Status, pe.Msg)
	}
	if pe.Msg == "" {
		t.Fatalf("%s: error %d has no message", how, pe.Status)
	}
	return pe.Status
}

func fuzzDescribeMsg(m *hub.Message) string {
	return fmt.Sprintf("{topics %q name %q data %q retry %v}", m.Topics, fuzzClip(m.Name), fuzzClip(m.Data), m.Retry)
}

func fuzzClip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func FuzzParseJSONBody(f *testing.F) {
	for _, s := range []string{
		`{"topic":"news","data":"hello"}`,
		`{"topic":"news","event":"up","data":"a\r\nb\rc\nd","retry":1500}`,
		`[{"topic":"a","data":"1"},{"topics":["a","b"],"data":{"k":[1, 2]}}]`,
		`{"topic":"a","topics":["b"],"data":"x"}`,
		`{"topic":"a","data":"x"} trailing`,
		`{"topic":"a","data":"\u0000\u2028\ud800"}`,
		"\xEF\xBB\xBF{\"topic\":\"a\",\"data\":\"bom\"}",
		`{"topic":"a","data":"x","retry":99999999999999999999}`,
		`{"topic":"a","event":"a\u0000b","data":"x"}`,
		`[]`,
		`[null]`,
		` {"topic":"a","data":null}`,
		`{"topic":"a","data":"x","Topic":"b"}`,
		`{"topic":"a","data":"x","extra":1}`,
		"{\"topic\":\"a\",\"data\":\"\xff\"}",
	} {
		f.Add([]byte(s), uint16(1023))
	}
	f.Add([]byte(`{"topic":"a","data":"12345678"}`), uint16(7))
	f.Fuzz(func(t *testing.T, body []byte, limit uint16) {
		maxEvent := fuzzLimit(limit)
		msgs, array, perr := parseJSONBody(body, maxEvent)
		if perr != nil {
			if msgs != nil {
				t.Fatalf("error %v returned together with %d messages", perr, len(msgs))
			}
			fuzzCheckErr(t, "parseJSONBody", perr)
			return
		}
		if len(msgs) == 0 {
			t.Fatalf("accepted %q without a message", fuzzClip(string(body)))
		}
		fuzzCheckAccepted(t, "parseJSONBody", msgs, maxEvent)
		// An array is answered with an array, and yields one message per
		// element; an object yields one.
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if array != (trimmed[0] == '[') {
			t.Fatalf("array = %v for a body starting %q", array, trimmed[:1])
		}
		if array {
			var raw []json.RawMessage
			if err := json.Unmarshal(trimmed, &raw); err != nil || len(raw) != len(msgs) {
				t.Fatalf("array of %d elements (%v) gave %d messages", len(raw), err, len(msgs))
			}
		} else if len(msgs) != 1 {
			t.Fatalf("an object gave %d messages", len(msgs))
		}
		if !json.Valid(trimmed) {
			t.Fatalf("accepted a body that is not JSON: %q", fuzzClip(string(body)))
		}
	})
}

func FuzzParseFormBody(f *testing.F) {
	for _, s := range []string{
		"topic=news&data=hello",
		"topic=a&topic=b&event=up&data=a%0D%0Ab%0Dc&retry=1500",
		"topic=a&data=%00%E2%80%A8",
		"topic=a&data=%FF",
		"topic=a&data=x&retry=99999999999999999999",
		"topic=a&data=x;y",
		"topic=a&data=%zz",
		"topic=a&data=x&data=y",
		"topic=a&data=x&bogus=1",
		"topic=a&event=a%00b&data=x",
		"=x&topic=a&data=y",
		"topic=a&data=",
		"topic=a&data=x&retry=+5",
	} {
		f.Add([]byte(s), uint16(1023))
	}
	f.Fuzz(func(t *testing.T, body []byte, limit uint16) {
		maxEvent := fuzzLimit(limit)
		msgs, perr := parseFormBody(body, maxEvent)
		if perr != nil {
			if msgs != nil {
				t.Fatalf("error %v returned together with %d messages", perr, len(msgs))
			}
			fuzzCheckErr(t, "parseFormBody", perr)
			return
		}
		fuzzCheckAccepted(t, "parseFormBody", msgs, maxEvent)
		if len(msgs) != 1 {
			t.Fatalf("a form gave %d messages", len(msgs))
		}
		// What was accepted is exactly what the form says.
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("accepted a malformed form %q: %v", fuzzClip(string(body)), err)
		}
		m := msgs[0]
		if m.Data != vals.Get("data") || m.Name != vals.Get("event") || !slices.Equal(m.Topics, vals["topic"]) {
			t.Fatalf("form %q gave %s", fuzzClip(string(body)), fuzzDescribeMsg(m))
		}
	})
}

func FuzzParseTextBody(f *testing.F) {
	for _, s := range [][2]string{
		{"hello", "topic=news"},
		{"a\r\nb\rc\nd", "topic=a&topic=b&event=up&retry=1500"},
		{"\x00\u2028\U0001F600", "topic=a&event=%E2%80%A8"},
		{"\xEF\xBB\xBFbom", "topic=a"},
		{"\xff\xfe", "topic=a"},
		{"", "topic=a"},
		{"x", "topic=a&retry=99999999999999999999"},
		{"x", "topic=a&event=a%0Ab"},
		{"x", ""},
		{"x", "topic=sp%20ace"},
	} {
		f.Add([]byte(s[0]), s[1], uint16(1023))
	}
	f.Fuzz(func(t *testing.T, body []byte, rawQuery string, limit uint16) {
		maxEvent := fuzzLimit(limit)
		query, _ := url.ParseQuery(rawQuery) // as r.URL.Query() does: errors are dropped
		msgs, perr := parseTextBody(body, query, maxEvent)
		if perr != nil {
			if msgs != nil {
				t.Fatalf("error %v returned together with %d messages", perr, len(msgs))
			}
			fuzzCheckErr(t, "parseTextBody", perr)
			return
		}
		fuzzCheckAccepted(t, "parseTextBody", msgs, maxEvent)
		if len(msgs) != 1 {
			t.Fatalf("a text body gave %d messages", len(msgs))
		}
		// The body is the data, as is: normalising is the encoder's job.
		if m := msgs[0]; m.Data != string(body) || m.Name != query.Get("event") || !slices.Equal(m.Topics, query["topic"]) {
			t.Fatalf("body %q query %q gave %s", fuzzClip(string(body)), rawQuery, fuzzDescribeMsg(m))
		}
	})
}

// fuzzStreamRun feeds chunks to a fresh streamParser and returns what it
// emitted and the status of the error that stopped it (0 for none).
func fuzzStreamRun(t *testing.T, how string, maxEvent int64, chunks [][]byte) ([]hub.Message, int) {
	t.Helper()
	var got []hub.Message
	p := &streamParser{topics: fuzzTopics, maxEvent: maxEvent, emit: func(m *hub.Message) error {
		got = append(got, *m)
		return nil
	}}
	for _, c := range chunks {
		if err := p.feed(c); err != nil {
			return got, fuzzCheckErr(t, how, err)
		}
	}
	if p.count != len(got) {
		t.Fatalf("%s: count %d after emitting %d", how, p.count, len(got))
	}
	return got, 0
}

// fuzzStreamReference interprets body by the WHATWG event-stream rules,
// written the simple way (whole input, normalise, split), with the limits
// the publish endpoint adds: a line longer than max_event+64 or an event's
// data over max_event is a 413 the moment it is read, and a dispatched event
// that ValidateMessage refuses is a 400. A retry field travels with the next
// dispatched event; an event left without its blank line is discarded.
func fuzzStreamReference(body []byte, maxEvent int64) ([]hub.Message, int) {
	s := string(body)
	s = strings.TrimPrefix(s, "\uFEFF")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	tail := lines[len(lines)-1] // not ended: never processed, but it counts for the line limit
	lines = lines[:len(lines)-1]
	var out []hub.Message
	var data strings.Builder
	hasData, name, retry := false, "", time.Duration(0)
	for _, line := range lines {
		if int64(len(line))-maxFieldOverhead > maxEvent { // no overflow for a huge max_event
			return out, http.StatusRequestEntityTooLarge
		}
		if line == "" {
			if !hasData {
				name = ""
				continue
			}
			m := hub.Message{Topics: fuzzTopics, Name: name, Data: strings.TrimSuffix(data.String(), "\n"), Retry: retry}
			data.Reset()
			hasData, name, retry = false, "", 0
			if hub.ValidateMessage(&m) != nil {
				return out, http.StatusBadRequest
			}
			out = append(out, m)
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			name = value
		case "data":
			if int64(data.Len()+len(value)) > maxEvent {
				return out, http.StatusRequestEntityTooLarge
			}
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "retry":
			digits := value != "" && strings.Trim(value, "0123456789") == ""
			if ms, err := strconv.ParseUint(value, 10, 64); digits && err == nil && ms <= uint64(math.MaxInt64/int64(time.Millisecond)) {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if int64(len(tail))-maxFieldOverhead > maxEvent {
		return out, http.StatusRequestEntityTooLarge
	}
	return out, 0
}

func fuzzStreamDescribe(msgs []hub.Message, status int) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(fuzzDescribeMsg(&m))
		b.WriteByte(' ')
	}
	return fmt.Sprintf("%d events: %sstatus %d", len(msgs), b.String(), status)
}

func FuzzStreamParser(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n",
		"event: up\r\nretry: 1500\r\ndata: a\r\ndata: b\r\n\r\n",
		"data: a\rdata: b\r\r",
		"\xEF\xBB\xBFdata: bom\n\n",
		"\xEF\xBB\xBF\xEF\xBB\xBFdata: b\n\ndata: c\n\n",
		"data: \x00\u2028\n\n",
		"data: \xff\n\n",
		"retry: 99999999999999999999\ndata: x\n\n",
		"event: a\x00b\ndata: x\n\n",
		"data\n\n",
		"data: a\n\ndata: trailing",
		": comment\nid: 5\nfoo: bar\ndata:x\n\n",
		"data: 1\r\n\ndata: 2\r\rdata: 3\n\r\ndata: 4\r\n\r",
	} {
		f.Add([]byte(s), uint(len(s)/2), uint16(1023))
	}
	f.Add([]byte("data: 12345\ndata: 6789\n\ndata: 12345\ndata: 67890\n\n"), uint(6), uint16(9))
	f.Fuzz(func(t *testing.T, body []byte, split uint, limit uint16) {
		maxEvent := fuzzLimit(limit)
		whole, wholeStatus := fuzzStreamRun(t, "one chunk", maxEvent, [][]byte{body})
		for i := range whole {
			fuzzCheckAccepted(t, "streamParser", []*hub.Message{&whole[i]}, maxEvent)
		}
		at := int(split % uint(len(body)+1))
		two, twoStatus := fuzzStreamRun(t, "two chunks", maxEvent, [][]byte{body[:at], body[at:]})
		if !reflect.DeepEqual(two, whole) || twoStatus != wholeStatus {
			t.Fatalf("split at %d: %s\none chunk: %s", at, fuzzStreamDescribe(two, twoStatus), fuzzStreamDescribe(whole, wholeStatus))
		}
		bytewise := make([][]byte, len(body))
		for i := range body {
			bytewise[i] = body[i : i+1]
		}
		bw, bwStatus := fuzzStreamRun(t, "byte by byte", maxEvent, bytewise)
		if !reflect.DeepEqual(bw, whole) || bwStatus != wholeStatus {
			t.Fatalf("byte by byte: %s\none chunk: %s", fuzzStreamDescribe(bw, bwStatus), fuzzStreamDescribe(whole, wholeStatus))
		}
		ref, refStatus := fuzzStreamReference(body, maxEvent)
		if len(ref) == 0 {
			ref = nil
		}
		if !reflect.DeepEqual(whole, ref) || wholeStatus != refStatus {
			t.Fatalf("the parser and the WHATWG reference disagree on %q\nparser:    %s\nreference: %s",
				fuzzClip(string(body)), fuzzStreamDescribe(whole, wholeStatus), fuzzStreamDescribe(ref, refStatus))
		}
	})
}

// fuzzNormalize is the WHATWG line-ending normalisation: CRLF, then any lone
// CR, become LF.
func fuzzNormalize(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func FuzzEncodeRoundTrip(f *testing.F) {
	for _, s := range [][2]string{
		{"", "hello"},
		{"message", "a\r\nb\rc\nd"},
		{"up", "\r"},
		{" spaced name ", "  leading\n: colon\ndata: x\n\n"},
		{"\u2028", "\x00\u2028\u2029\u0085"},
		{"\U0001F600", "\uFEFFbom\r\r\n\n\r"},
		{"a:b", "trailing\r\n"},
		{"", "\n"},
	} {
		f.Add(s[0], s[1], uint32(0), uint64(1))
	}
	f.Add("x", "y", uint32(math.MaxUint32), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, name, data string, retryMS uint32, seq uint64) {
		m := &hub.Message{Topics: []string{"t"}, Name: name, Data: data, Retry: time.Duration(retryMS) * time.Millisecond}
		if hub.ValidateMessage(m) != nil {
			return
		}
		id := hub.ID{Epoch: "fz0ep0ch00", Seq: seq}
		wire := hub.EncodeEvent(id, m)
		for i, c := range wire {
			if c == '\r' && (i+1 == len(wire) || wire[i+1] != '\n') {
				t.Fatalf("a lone CR at byte %d of the wire: %q", i, fuzzClip(string(wire)))
			}
		}
		// One event for any conforming parser: it ends in its only blank line.
		if n := strings.Count(fuzzNormalize(string(wire)), "\n\n"); n != 1 || !bytes.HasSuffix(wire, []byte("\n\n")) {
			t.Fatalf("the wire has %d blank lines, want one at the end: %q", n, fuzzClip(string(wire)))
		}
		wantType := name
		if name == "message" {
			wantType = "" // sent without an event line
		}
		wantData := fuzzNormalize(data)

		var evs []sse.Event
		for ev, err := range sse.Read(bytes.NewReader(wire), &sse.ReadConfig{MaxEventSize: 2*len(wire) + 4096}) {
			if err != nil {
				t.Fatalf("go-sse: %v on %q", err, fuzzClip(string(wire)))
			}
			evs = append(evs, ev)
		}
		if len(evs) != 1 {
			t.Fatalf("go-sse decoded %d events from %q", len(evs), fuzzClip(string(wire)))
		}
		if ev := evs[0]; ev.Type != wantType || ev.Data != wantData || ev.LastEventID != id.String() {
			t.Fatalf("go-sse decoded type %q data %q id %q\nwant type %q data %q id %q",
				ev.Type, hub.Truncate(ev.Data, 200), ev.LastEventID, wantType, hub.Truncate(wantData, 200), id.String())
		}

		// Our own stream parser, as a text/event-stream publish would read
		// the same bytes, gets the same event back, retry included.
		got, status := fuzzStreamRun(t, "re-parse", int64(len(wire)), [][]byte{wire})
		want := []hub.Message{{Topics: fuzzTopics, Name: wantType, Data: wantData, Retry: m.Retry}}
		if status != 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("the stream parser read back %s; want %s", fuzzStreamDescribe(got, status), fuzzStreamDescribe(want, 0))
		}
		if !utf8.Valid(wire) {
			t.Fatalf("the wire is not UTF-8: %q", fuzzClip(string(wire)))
		}
	})
}
