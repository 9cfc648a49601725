package hub

import (
	"bytes"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

func TestParseIDRoundTrip(t *testing.T) {
	tests := []ID{
		{Epoch: "abcdefghij", Seq: 0},
		{Epoch: "abcdefghij", Seq: 1},
		{Epoch: "abcdefghij", Seq: 18446744073709551615}, // max uint64
		{Epoch: "a", Seq: 42},
		{Epoch: "a-b-c", Seq: 7}, // the epoch alphabet includes '-'
		{Epoch: "A.Z_0:9", Seq: 10},
		{Epoch: NewEpoch(), Seq: 123456789},
		{Epoch: strings.Repeat("e", maxIDLen-2), Seq: 9}, // exactly 64 bytes
	}
	for _, id := range tests {
		t.Run(id.String(), func(t *testing.T) {
			s := id.String()
			got, ok := ParseID(s)
			if !ok {
				t.Fatalf("ParseID(%q) rejected an id written by ID.String", s)
			}
			if got != id {
				t.Fatalf("ParseID(%q) = %+v, want %+v", s, got, id)
			}
			if got.String() != s {
				t.Fatalf("round trip %q -> %q", s, got.String())
			}
		})
	}
}

func TestParseIDRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"65 bytes", strings.Repeat("e", maxIDLen-1) + "-1"},
		{"very long", strings.Repeat("abc-1", 100)},
		{"no dash", "abcdef12"},
		{"only seq", "-12"},
		{"empty seq", "abc-"},
		{"only dash", "-"},
		{"leading zero", "abc-01"},
		{"leading zeros", "abc-0001"},
		{"double zero", "abc-00"},
		{"plus sign", "abc-+1"},
		{"space in seq", "abc- 1"},
		{"trailing space", "abc-1 "},
		{"letters in seq", "abc-1a"},
		{"hex seq", "abc-0x1f"},
		{"underscore seq", "abc-1_000"},
		{"uint64 overflow", "abc-18446744073709551616"},
		{"space in epoch", "ab c-1"},
		{"slash in epoch", "ab/c-1"},
		{"non-ASCII epoch", "é-1"},
		{"NUL in epoch", "ab\x00-1"},
		{"newline in epoch", "ab\n-1"},
		{"CR at end", "abc-1\r"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if id, ok := ParseID(tc.in); ok {
				t.Fatalf("ParseID(%q) = %+v, true; want rejected", tc.in, id)
			}
		})
	}
}

func TestNewEpoch(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 100; i++ {
		e := NewEpoch()
		if len(e) != 10 {
			t.Fatalf("NewEpoch() = %q, want 10 characters", e)
		}
		if !validEpoch(e) {
			t.Fatalf("NewEpoch() = %q has characters outside the id alphabet", e)
		}
		if seen[e] {
			t.Fatalf("NewEpoch() repeated %q within 100 calls", e)
		}
		seen[e] = true
	}
}

func TestValidTopicName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"simple", "news", true},
		{"every allowed char", "AZaz09._~:@/-", true},
		{"one char", "a", true},
		{"256 bytes", strings.Repeat("t", MaxTopicNameLen), true},
		{"slashes", "a/b/c", true},
		{"empty", "", false},
		{"257 bytes", strings.Repeat("t", MaxTopicNameLen+1), false},
		{"space", "a b", false},
		{"star", "chat/*", false},
		{"placeholder", "user/{id}", false},
		{"non-ASCII", "café", false},
		{"NUL", "a\x00", false},
		{"newline", "a\n", false},
		{"CR", "a\r", false},
		{"question mark", "a?b", false},
		{"ampersand", "a&b", false},
		{"percent", "a%20b", false},
		{"plus", "a+b", false},
		{"comma", "a,b", false},
		{"backslash", `a\b`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidTopicName(tc.in)
			if tc.ok && err != nil {
				t.Fatalf("ValidTopicName(%q) = %v, want nil", tc.in, err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("ValidTopicName(%q) = nil, want an error", tc.in)
			}
		})
	}
}

func TestValidEventName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty is the default", "", true},
		{"message", "message", true},
		{"simple", "update", true},
		{"spaces", " leading and trailing ", true},
		{"colon", "a:b", true},
		{"unicode", "änderung🎉", true},
		{"128 bytes", strings.Repeat("n", MaxEventNameLen), true},
		{"128 bytes of multibyte", strings.Repeat("é", MaxEventNameLen/2), true},
		{"129 bytes", strings.Repeat("n", MaxEventNameLen+1), false},
		{"130 bytes of multibyte", strings.Repeat("é", MaxEventNameLen/2+1), false},
		{"CR", "a\rb", false},
		{"LF", "a\nb", false},
		{"CRLF", "a\r\n", false},
		{"NUL", "a\x00b", false},
		{"only LF", "\n", false},
		{"invalid UTF-8", "a\xffb", false},
		{"truncated UTF-8", "\xc3", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidEventName(tc.in)
			if tc.ok && err != nil {
				t.Fatalf("ValidEventName(%q) = %v, want nil", tc.in, err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("ValidEventName(%q) = nil, want an error", tc.in)
			}
		})
	}
}

func TestValidateMessage(t *testing.T) {
	valid := func() *Message { return &Message{Topics: []string{"news"}, Name: "update", Data: "x"} }
	tests := []struct {
		name  string
		mod   func(m *Message)
		field string // "" means valid
	}{
		{"valid", func(m *Message) {}, ""},
		{"valid retry", func(m *Message) { m.Retry = time.Second }, ""},
		{"no topic", func(m *Message) { m.Topics = nil }, "topic"},
		{"bad topic", func(m *Message) { m.Topics = []string{"ok", "not ok"} }, "topic"},
		{"bad event", func(m *Message) { m.Name = "a\nb" }, "event"},
		{"empty data", func(m *Message) { m.Data = "" }, "data"},
		{"invalid UTF-8 data", func(m *Message) { m.Data = "\xff" }, "data"},
		{"negative retry", func(m *Message) { m.Retry = -time.Millisecond }, "retry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.mod(m)
			err := ValidateMessage(m)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("ValidateMessage = %v, want nil", err)
				}
				return
			}
			fe, ok := err.(*FieldError)
			if !ok {
				t.Fatalf("ValidateMessage = %#v, want a *FieldError", err)
			}
			if fe.Field != tc.field {
				t.Fatalf("ValidateMessage field = %q (%s), want %q", fe.Field, fe.Msg, tc.field)
			}
		})
	}
}

// eventTestNormalize is the line-ending normalisation of the WHATWG parser:
// CRLF, lone CR and LF all end a line.
func eventTestNormalize(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// eventTestDecode parses wire with go-sse's spec-conformant reader.
func eventTestDecode(t *testing.T, wire []byte) []sse.Event {
	t.Helper()
	var out []sse.Event
	for ev, err := range sse.Read(bytes.NewReader(wire), &sse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			t.Fatalf("go-sse could not parse the wire: %v\nwire: %q", err, eventTestClip(wire))
		}
		out = append(out, ev)
	}
	return out
}

func eventTestClip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// eventTestCheckWire checks the shape every encoded event must have: one
// event ending in its only blank line, every line a known field, and no CR
// that is not the first half of a CRLF.
func eventTestCheckWire(t *testing.T, wire []byte) {
	t.Helper()
	for i, c := range wire {
		if c == '\r' && (i+1 == len(wire) || wire[i+1] != '\n') {
			t.Fatalf("lone CR at byte %d of the wire: %q", i, eventTestClip(wire))
		}
	}
	if !bytes.HasSuffix(wire, []byte("\n\n")) {
		t.Fatalf("wire does not end with a blank line: %q", eventTestClip(wire))
	}
	if i := bytes.Index(wire, []byte("\n\n")); i != len(wire)-2 {
		t.Fatalf("blank line at byte %d, before the end (%d): the event is cut in two: %q", i, len(wire)-2, eventTestClip(wire))
	}
	lines := strings.Split(string(wire[:len(wire)-2]), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "id: ") && !strings.HasPrefix(l, "event: ") &&
			!strings.HasPrefix(l, "retry: ") && !strings.HasPrefix(l, "data: ") {
			t.Fatalf("line %q is not an id, event, retry or data field", eventTestClip([]byte(l)))
		}
	}
}

func TestEncodeEventData(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", (100<<10)/16) // 100 KiB, one line
	tests := []struct {
		name string
		data string
	}{
		{"plain", "hello"},
		{"LF", "a\nb"},
		{"CR", "a\rb"},
		{"CRLF", "a\r\nb"},
		{"lone CR at the end", "a\r"},
		{"CR CR LF", "\r\r\n"},
		{"CR CR LF inside", "a\r\r\nb"},
		{"LF CR", "a\n\rb"},
		{"mixed endings", "1\r\n2\n3\r4\r\n\r\n5\n\r6"},
		{"only a CR", "\r"},
		{"only a CRLF", "\r\n"},
		{"only newlines", "\n\n\n"},
		{"only CRs", "\r\r\r"},
		{"trailing newline", "a\n"},
		{"trailing CRLF", "a\r\n"},
		{"leading newline", "\na"},
		{"NUL", "a\x00b\x00"},
		{"line and paragraph separators", "a\u2028b\u2029c"},
		{"NEL and vertical tab", "a\u0085b\vc\fd"},
		{"emoji", "🎉 party 👩‍👩‍👧‍👦 flags 🇩🇪"},
		{"100 KiB line", long},
		{"100 KiB with CRs", strings.ReplaceAll(long, "f", "\r")},
		{"one leading space", " x"},
		{"leading spaces", "   x"},
		{"leading space on every line", " a\n  b\r   c"},
		{"leading tab", "\tx"},
		{"trailing spaces", "x   "},
		{"only a space", " "},
		{"starts with a colon", ":not a comment"},
		{"colon lines", ":a\n:b\r\n: c"},
		{"field injection", "x\n\nevent: evil\nid: 1\nretry: 1\ndata: y"},
		{"field injection with CR", "x\r\revent: evil\rdata: y"},
		{"byte order mark", "\uFEFFx"},
		{"JSON", `{"a":[1,2,{"b":"c\nd"}]}`},
	}
	id := ID{Epoch: "abcdefghij", Seq: 42}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := EncodeEvent(id, &Message{Data: tc.data})
			eventTestCheckWire(t, wire)
			evs := eventTestDecode(t, wire)
			if len(evs) != 1 {
				t.Fatalf("decoded %d events, want 1; wire: %q", len(evs), eventTestClip(wire))
			}
			if want := eventTestNormalize(tc.data); evs[0].Data != want {
				t.Fatalf("decoded data differs\n got: %q\nwant: %q", eventTestClip([]byte(evs[0].Data)), eventTestClip([]byte(want)))
			}
			if evs[0].LastEventID != id.String() {
				t.Fatalf("decoded id %q, want %q", evs[0].LastEventID, id.String())
			}
			if evs[0].Type != "" {
				t.Fatalf("decoded type %q, want the default", evs[0].Type)
			}
		})
	}
}

func TestEncodeEventNameAndRetry(t *testing.T) {
	tests := []struct {
		name      string
		evName    string
		retry     time.Duration
		wantType  string
		wantEvent bool   // an event: line is on the wire
		wantRetry string // the retry line, "" for none
	}{
		{"default", "", 0, "", false, ""},
		{"message is the default", "message", 0, "", false, ""},
		{"named", "update", 0, "update", true, ""},
		{"leading space kept", " spaced", 0, " spaced", true, ""},
		{"colon in name", "a:b", 0, "a:b", true, ""},
		{"unicode name", "änderung🎉", 0, "änderung🎉", true, ""},
		{"Message is not message", "Message", 0, "Message", true, ""},
		{"retry", "", 1500 * time.Millisecond, "", false, "retry: 1500\n"},
		{"retry and name", "tick", 3 * time.Second, "tick", true, "retry: 3000\n"},
		{"long retry", "", time.Hour, "", false, "retry: 3600000\n"},
		{"negative retry is not sent", "", -time.Second, "", false, ""},
	}
	id := ID{Epoch: "ep", Seq: 7}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := EncodeEvent(id, &Message{Name: tc.evName, Data: "line1\nline2", Retry: tc.retry})
			eventTestCheckWire(t, wire)
			if got := bytes.Contains(wire, []byte("\nevent: ")); got != tc.wantEvent {
				t.Fatalf("event line present = %v, want %v; wire %q", got, tc.wantEvent, wire)
			}
			if tc.wantRetry == "" {
				if bytes.Contains(wire, []byte("retry:")) {
					t.Fatalf("unexpected retry line: %q", wire)
				}
			} else if !bytes.Contains(wire, []byte("\n"+tc.wantRetry)) {
				t.Fatalf("wire %q lacks %q", wire, tc.wantRetry)
			}
			if !bytes.HasPrefix(wire, []byte("id: ep-7\n")) {
				t.Fatalf("wire %q does not start with the id line", wire)
			}
			evs := eventTestDecode(t, wire)
			if len(evs) != 1 {
				t.Fatalf("decoded %d events, want 1", len(evs))
			}
			if evs[0].Type != tc.wantType || evs[0].Data != "line1\nline2" || evs[0].LastEventID != "ep-7" {
				t.Fatalf("decoded %+v, want type %q, data line1\\nline2, id ep-7", evs[0], tc.wantType)
			}
		})
	}
}

func TestEncodeEventExactBytes(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"plain", Message{Data: "hi"}, "id: e-1\ndata: hi\n\n"},
		{"named", Message{Name: "up", Data: "hi"}, "id: e-1\nevent: up\ndata: hi\n\n"},
		{"retry", Message{Data: "hi", Retry: 2 * time.Second}, "id: e-1\nretry: 2000\ndata: hi\n\n"},
		{"lines", Message{Data: "a\r\nb\rc\nd"}, "id: e-1\ndata: a\ndata: b\ndata: c\ndata: d\n\n"},
		{"trailing LF", Message{Data: "a\n"}, "id: e-1\ndata: a\ndata: \n\n"},
		{"CR CR LF", Message{Data: "\r\r\n"}, "id: e-1\ndata: \ndata: \ndata: \n\n"},
		{"leading space", Message{Data: " a"}, "id: e-1\ndata:  a\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(EncodeEvent(ID{Epoch: "e", Seq: 1}, &tc.m)); got != tc.want {
				t.Fatalf("EncodeEvent = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRetryField(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{3 * time.Second, "retry: 3000\n\n"},
		{1500 * time.Millisecond, "retry: 1500\n\n"},
		{time.Millisecond, "retry: 1\n\n"},
	}
	for _, tc := range tests {
		if got := string(RetryField(tc.d)); got != tc.want {
			t.Errorf("retryField(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestEventSize(t *testing.T) {
	tests := []struct {
		ev   Event
		want int64
	}{
		{Event{ID: ID{Epoch: "", Seq: 1}}, 64},
		{Event{ID: ID{Epoch: "abcdefghij", Seq: 1}, Wire: make([]byte, 100)}, 174},
		{Event{ID: ID{Epoch: "e"}, Wire: make([]byte, 1<<20)}, 1<<20 + 65},
	}
	for i, tc := range tests {
		if got := tc.ev.Size(); got != tc.want {
			t.Errorf("case %d: Size() = %d, want %d", i, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"", 0, ""},
	}
	for _, tc := range tests {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
