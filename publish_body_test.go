package caddysse

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// bodyTestMaxEvent is a max_event large enough not to matter.
const bodyTestMaxEvent = 1 << 20

// bodyTestWantErr is an expected *PublishError; a zero status means success.
type bodyTestWantErr struct {
	status int
	field  string
	msg    string // a substring of the message, if set
}

func bodyTestCheckErr(t *testing.T, perr *PublishError, want bodyTestWantErr) {
	t.Helper()
	if want.status == 0 {
		if perr != nil {
			t.Fatalf("unexpected error %d %q (field %q)", perr.Status, perr.Msg, perr.Field)
		}
		return
	}
	if perr == nil {
		t.Fatalf("no error, want %d on field %q", want.status, want.field)
	}
	if perr.Status != want.status || perr.Field != want.field {
		t.Fatalf("error %d field %q (%s), want %d field %q", perr.Status, perr.Field, perr.Msg, want.status, want.field)
	}
	if want.msg != "" && !strings.Contains(perr.Msg, want.msg) {
		t.Fatalf("error message %q does not mention %q", perr.Msg, want.msg)
	}
	if perr.Msg == "" {
		t.Fatal("error without a message")
	}
}

func bodyTestCheckMsgs(t *testing.T, got []*hub.Message, want []hub.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d: %s", len(got), len(want), bodyTestFormat(got))
	}
	for i := range want {
		if !reflect.DeepEqual(*got[i], want[i]) {
			t.Fatalf("message %d = %+v, want %+v", i, *got[i], want[i])
		}
	}
}

func bodyTestFormat(msgs []*hub.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%+v ", *m)
	}
	return b.String()
}

func TestParseJSONBody(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		maxEvent  int64 // 0: bodyTestMaxEvent
		want      []hub.Message
		wantArray bool
		err       bodyTestWantErr
	}{
		// One object.
		{name: "object", body: `{"topic":"news","event":"update","data":"hi"}`,
			want: []hub.Message{{Topics: []string{"news"}, Name: "update", Data: "hi"}}},
		{name: "whitespace around", body: " \r\n\t{\"topic\":\"a\",\"data\":\"x\"} \n",
			want: []hub.Message{{Topics: []string{"a"}, Data: "x"}}},
		{name: "topics", body: `{"topics":["a","b/c"],"data":"x"}`,
			want: []hub.Message{{Topics: []string{"a", "b/c"}, Data: "x"}}},
		{name: "string data is sent as is", body: `{"topic":"a","data":"line1\nline2\r\n é \ud83c\udf89 <b>&amp;</b>"}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "line1\nline2\r\n é 🎉 <b>&amp;</b>"}}},
		{name: "string data of spaces", body: `{"topic":"a","data":"  "}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "  "}}},
		{name: "number data", body: `{"topic":"a","data":42}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "42"}}},
		{name: "number data kept verbatim", body: `{"topic":"a","data": -1.50e3 }`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "-1.50e3"}}},
		{name: "object data compacted", body: "{\"topic\":\"a\",\"data\":{ \"a\" : [ 1, 2 ],\n \"b\" : null, \"c\": \"x y\" }}",
			want: []hub.Message{{Topics: []string{"a"}, Data: `{"a":[1,2],"b":null,"c":"x y"}`}}},
		{name: "array data compacted", body: `{"topic":"a","data":[ "x" , 1 , {} ]}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: `["x",1,{}]`}}},
		{name: "boolean data", body: `{"topic":"a","data":false}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "false"}}},
		{name: "empty object data", body: `{"topic":"a","data":{}}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "{}"}}},
		{name: "retry", body: `{"topic":"a","data":"x","retry":1500}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "x", Retry: 1500 * time.Millisecond}}},
		{name: "retry 0", body: `{"topic":"a","data":"x","retry":0}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "x"}}},
		{name: "retry null", body: `{"topic":"a","data":"x","retry":null}`,
			want: []hub.Message{{Topics: []string{"a"}, Data: "x"}}},
		{name: "event message", body: `{"topic":"a","event":"message","data":"x"}`,
			want: []hub.Message{{Topics: []string{"a"}, Name: "message", Data: "x"}}},
		{name: "event of 128 bytes", body: `{"topic":"a","event":"` + strings.Repeat("e", 128) + `","data":"x"}`,
			want: []hub.Message{{Topics: []string{"a"}, Name: strings.Repeat("e", 128), Data: "x"}}},
		{name: "data of exactly max_event", body: `{"topic":"a","data":"0123456789"}`, maxEvent: 10,
			want: []hub.Message{{Topics: []string{"a"}, Data: "0123456789"}}},
		{name: "max_event counts compacted data", body: `{"topic":"a","data":{ "a" : 1 }}`, maxEvent: 7,
			want: []hub.Message{{Topics: []string{"a"}, Data: `{"a":1}`}}},

		// Arrays.
		{name: "array", body: `[{"topic":"a","data":"x"},{"topics":["b","c"],"event":"e","data":{"k":1},"retry":5}]`, wantArray: true,
			want: []hub.Message{{Topics: []string{"a"}, Data: "x"}, {Topics: []string{"b", "c"}, Name: "e", Data: `{"k":1}`, Retry: 5 * time.Millisecond}}},
		{name: "array of one", body: ` [ {"topic":"a","data":"x"} ] `, wantArray: true,
			want: []hub.Message{{Topics: []string{"a"}, Data: "x"}}},

		// Rejected.
		{name: "topic and topics", body: `{"topic":"a","topics":["b"],"data":"x"}`, err: bad("topics")},
		{name: "topic and topics in an array", body: `[{"topic":"a","data":"x"},{"topic":"a","topics":["b"],"data":"x"}]`, err: bad("[1].topics")},
		{name: "empty topics", body: `{"topics":[],"data":"x"}`, err: bad("topics")},
		{name: "no topic", body: `{"data":"x"}`, err: bad("topic")},
		{name: "no topic in an array", body: `[{"topic":"a","data":"x"},{"data":"x"}]`, err: bad("[1].topic")},
		{name: "bad topic", body: `{"topic":"a b","data":"x"}`, err: bad("topic")},
		{name: "bad topic among topics", body: `{"topics":["ok","chat/*"],"data":"x"}`, err: bad("topic")},
		{name: "empty topic", body: `{"topic":"","data":"x"}`, err: bad("topic")},
		{name: "data null", body: `{"topic":"a","data":null}`, err: bad("data")},
		{name: "data missing", body: `{"topic":"a"}`, err: bad("data")},
		{name: "data empty string", body: `{"topic":"a","data":""}`, err: bad("data")},
		{name: "data null in an array", body: `[{"topic":"a","data":"x"},{"topic":"a","data":null}]`, err: bad("[1].data")},
		{name: "data empty in an array", body: `[{"topic":"a","data":"x"},{"topic":"a","data":""}]`, err: bad("[1].data")},
		{name: "invalid UTF-8", body: "{\"topic\":\"a\",\"data\":\"\xff\"}", err: bad("")},
		{name: "invalid UTF-8 in an event name", body: "{\"topic\":\"a\",\"event\":\"\xc3\",\"data\":\"x\"}", err: bad("")},
		{name: "unknown field", body: `{"topic":"a","data":"x","colour":"red"}`, err: bodyTestWantErr{status: 400, field: "", msg: "colour"}},
		{name: "id is not for publishers", body: `{"topic":"a","data":"x","id":"5"}`, err: bad("")},
		{name: "empty body", body: ``, err: bad("")},
		{name: "blank body", body: " \n\t", err: bad("")},
		{name: "empty array", body: `[]`, err: bad("")},
		{name: "empty array with spaces", body: `[ ]`, err: bad("")},
		{name: "malformed", body: `{"topic":`, err: bad("")},
		{name: "malformed array", body: `[{"topic":"a","data":"x"}`, err: bad("")},
		{name: "a string", body: `"x"`, err: bad("")},
		{name: "a number", body: `42`, err: bad("")},
		{name: "null", body: `null`, err: bad("data")},
		{name: "event name not a string", body: `{"topic":"a","event":5,"data":"x"}`, err: bad("")},
		{name: "topic not a string", body: `{"topic":["a"],"data":"x"}`, err: bad("")},
		{name: "retry negative", body: `{"topic":"a","data":"x","retry":-1}`, err: bad("retry")},
		{name: "retry fraction", body: `{"topic":"a","data":"x","retry":1.5}`, err: bad("retry")},
		{name: "retry exponent", body: `{"topic":"a","data":"x","retry":1e3}`, err: bad("retry")},
		{name: "retry string", body: `{"topic":"a","data":"x","retry":"100"}`, err: bad("retry")},
		{name: "retry in an array", body: `[{"topic":"a","data":"x","retry":true}]`, err: bad("[0].retry")},
		{name: "event with CR", body: `{"topic":"a","event":"a\rb","data":"x"}`, err: bad("event")},
		{name: "event with LF", body: `{"topic":"a","event":"a\nb","data":"x"}`, err: bad("event")},
		{name: "event with NUL", body: `{"topic":"a","event":"a\u0000b","data":"x"}`, err: bad("event")},
		{name: "event of 129 bytes", body: `{"topic":"a","event":"` + strings.Repeat("e", 129) + `","data":"x"}`, err: bad("event")},
		{name: "event with LF in an array", body: `[{"topic":"a","event":"a\nb","data":"x"}]`, err: bad("[0].event")},
		{name: "over max_event", body: `{"topic":"a","data":"0123456789a"}`, maxEvent: 10,
			err: bodyTestWantErr{status: http.StatusRequestEntityTooLarge, field: "data"}},
		{name: "over max_event in an array", body: `[{"topic":"a","data":"x"},{"topic":"a","data":"0123456789a"}]`, maxEvent: 10,
			err: bodyTestWantErr{status: http.StatusRequestEntityTooLarge, field: "[1].data"}},
		{name: "compacted JSON over max_event", body: `{"topic":"a","data":{"a":10}}`, maxEvent: 7,
			err: bodyTestWantErr{status: http.StatusRequestEntityTooLarge, field: "data"}},

		// Trailing garbage.
		{name: "trailing word", body: `{"topic":"a","data":"x"} x`, err: bad("")},
		{name: "two objects", body: `{"topic":"a","data":"x"} {"topic":"a","data":"y"}`, err: bad("")},
		{name: "trailing comma", body: `{"topic":"a","data":"x"},`, err: bad("")},
		{name: "trailing brace", body: `{"topic":"a","data":"x"}}`, err: bad("")},
		{name: "trailing bracket", body: `{"topic":"a","data":"x"}]`, err: bad("")},
		{name: "array then garbage", body: `[{"topic":"a","data":"x"}] x`, err: bad("")},
		{name: "array then bracket", body: `[{"topic":"a","data":"x"}]]`, err: bad("")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxEvent := tc.maxEvent
			if maxEvent == 0 {
				maxEvent = bodyTestMaxEvent
			}
			msgs, array, perr := parseJSONBody([]byte(tc.body), maxEvent)
			bodyTestCheckErr(t, perr, tc.err)
			if perr != nil {
				if msgs != nil {
					t.Fatalf("an invalid body still returned %d messages", len(msgs))
				}
				return
			}
			if array != tc.wantArray {
				t.Fatalf("array = %v, want %v", array, tc.wantArray)
			}
			bodyTestCheckMsgs(t, msgs, tc.want)
		})
	}
}

// A malformed array element is blamed on that element.
func TestParseJSONBodyElementField(t *testing.T) {
	_, _, perr := parseJSONBody([]byte(`[{"topic":"a","data":"x"},{"topic":"a","data":"x","nope":1}]`), bodyTestMaxEvent)
	if perr == nil || perr.Status != http.StatusBadRequest || !strings.HasPrefix(perr.Field, "[1]") {
		t.Fatalf("error = %+v, want 400 on a field starting with [1]", perr)
	}
}

// A retry the hub cannot represent must be refused, not sent as another
// number: time.Duration holds about 292 years of milliseconds.
func TestParseJSONBodyHugeRetry(t *testing.T) {
	for _, ms := range []int64{9223372036854, 20000000000000, 9223372036854775807} {
		body := fmt.Sprintf(`{"topic":"a","data":"x","retry":%d}`, ms)
		msgs, _, perr := parseJSONBody([]byte(body), bodyTestMaxEvent)
		if perr != nil {
			if perr.Status != http.StatusBadRequest || perr.Field != "retry" {
				t.Errorf("retry %d: error %d on field %q (%s), want 400 on retry", ms, perr.Status, perr.Field, perr.Msg)
			}
			continue
		}
		if got := msgs[0].Retry.Milliseconds(); got != ms {
			t.Errorf("retry %d accepted as %d ms (Retry = %v)", ms, got, msgs[0].Retry)
		}
	}
}

func TestParseFormBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		maxEvent int64
		want     []hub.Message
		err      bodyTestWantErr
	}{
		{name: "all fields", body: "topic=a&topic=b%2Fc&event=e&data=x%0D%0Ay&retry=10",
			want: []hub.Message{{Topics: []string{"a", "b/c"}, Name: "e", Data: "x\r\ny", Retry: 10 * time.Millisecond}}},
		{name: "plus is a space", body: "topic=a&data=hello+world",
			want: []hub.Message{{Topics: []string{"a"}, Data: "hello world"}}},
		{name: "repeated topic", body: "data=x&topic=a&topic=b&topic=c",
			want: []hub.Message{{Topics: []string{"a", "b", "c"}, Data: "x"}}},
		{name: "exactly max_event", body: "topic=a&data=0123456789", maxEvent: 10,
			want: []hub.Message{{Topics: []string{"a"}, Data: "0123456789"}}},
		{name: "unknown field", body: "topic=a&data=x&colour=red", err: bad("colour")},
		{name: "id is not a field", body: "topic=a&data=x&id=5", err: bad("id")},
		{name: "duplicated data", body: "topic=a&data=x&data=y", err: bad("data")},
		{name: "duplicated event", body: "topic=a&data=x&event=a&event=b", err: bad("event")},
		{name: "duplicated retry", body: "topic=a&data=x&retry=1&retry=2", err: bad("retry")},
		{name: "no data", body: "topic=a", err: bad("data")},
		{name: "empty data", body: "topic=a&data=", err: bad("data")},
		{name: "no topic", body: "data=x", err: bad("topic")},
		{name: "empty body", body: "", err: bad("topic")},
		{name: "bad topic", body: "topic=a+b&data=x", err: bad("topic")},
		{name: "bad retry", body: "topic=a&data=x&retry=soon", err: bad("retry")},
		{name: "negative retry", body: "topic=a&data=x&retry=-5", err: bad("retry")},
		{name: "event with LF", body: "topic=a&data=x&event=a%0Ab", err: bad("event")},
		{name: "invalid UTF-8 data", body: "topic=a&data=%FF", err: bad("data")},
		{name: "bad escape", body: "topic=a&data=%zz", err: bad("")},
		{name: "semicolon", body: "topic=a;data=x", err: bad("")},
		{name: "over max_event", body: "topic=a&data=0123456789a", maxEvent: 10,
			err: bodyTestWantErr{status: http.StatusRequestEntityTooLarge, field: "data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxEvent := tc.maxEvent
			if maxEvent == 0 {
				maxEvent = bodyTestMaxEvent
			}
			msgs, perr := parseFormBody([]byte(tc.body), maxEvent)
			bodyTestCheckErr(t, perr, tc.err)
			if perr != nil {
				if msgs != nil {
					t.Fatalf("an invalid body still returned %d messages", len(msgs))
				}
				return
			}
			bodyTestCheckMsgs(t, msgs, tc.want)
		})
	}
}

func TestParseTextBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		query    string
		maxEvent int64
		want     []hub.Message
		err      bodyTestWantErr
	}{
		{name: "body is the data", body: "hello\r\nworld\n", query: "topic=a&topic=b&event=e&retry=250",
			want: []hub.Message{{Topics: []string{"a", "b"}, Name: "e", Data: "hello\r\nworld\n", Retry: 250 * time.Millisecond}}},
		{name: "data that looks like a stream", body: "data: x\n\n", query: "topic=a",
			want: []hub.Message{{Topics: []string{"a"}, Data: "data: x\n\n"}}},
		{name: "exactly max_event", body: "0123456789", query: "topic=a", maxEvent: 10,
			want: []hub.Message{{Topics: []string{"a"}, Data: "0123456789"}}},
		{name: "empty body", body: "", query: "topic=a", err: bad("data")},
		{name: "no topic", body: "x", query: "", err: bad("topic")},
		{name: "bad topic", body: "x", query: "topic=a%20b", err: bad("topic")},
		{name: "invalid UTF-8", body: "\xff\xfe", query: "topic=a", err: bad("data")},
		{name: "bad event", body: "x", query: "topic=a&event=a%00b", err: bad("event")},
		{name: "bad retry", body: "x", query: "topic=a&retry=1.5", err: bad("retry")},
		{name: "over max_event", body: "0123456789a", query: "topic=a", maxEvent: 10,
			err: bodyTestWantErr{status: http.StatusRequestEntityTooLarge, field: "data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxEvent := tc.maxEvent
			if maxEvent == 0 {
				maxEvent = bodyTestMaxEvent
			}
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			msgs, perr := parseTextBody([]byte(tc.body), q, maxEvent)
			bodyTestCheckErr(t, perr, tc.err)
			if perr != nil {
				if msgs != nil {
					t.Fatalf("an invalid body still returned %d messages", len(msgs))
				}
				return
			}
			bodyTestCheckMsgs(t, msgs, tc.want)
		})
	}
}

// bodyTestStream runs input through a fresh streamParser fed in the given
// chunks and returns what it emitted and the error that stopped it.
func bodyTestStream(topics []string, maxEvent int64, chunks [][]byte) ([]*hub.Message, error) {
	var got []*hub.Message
	p := &streamParser{topics: topics, maxEvent: maxEvent, emit: func(m *hub.Message) error {
		got = append(got, m)
		return nil
	}}
	for _, c := range chunks {
		if err := p.feed(c); err != nil {
			return got, err
		}
	}
	return got, nil
}

func bodyTestOneChunk(s string) [][]byte { return [][]byte{[]byte(s)} }

func bodyTestBytewise(s string) [][]byte {
	out := make([][]byte, len(s))
	for i := 0; i < len(s); i++ { // bytes, not runes
		out[i] = []byte{s[i]}
	}
	return out
}

func bodyTestDescribe(msgs []*hub.Message, err error) string {
	s := bodyTestFormat(msgs)
	var pe *PublishError
	if errors.As(err, &pe) {
		return s + fmt.Sprintf("error %d field %q", pe.Status, pe.Field)
	}
	if err != nil {
		return s + "error " + err.Error()
	}
	return s + "no error"
}

func TestStreamParser(t *testing.T) {
	topics := []string{"a", "b"}
	m := func(data string) hub.Message { return hub.Message{Topics: topics, Data: data} }
	named := func(name, data string) hub.Message { return hub.Message{Topics: topics, Name: name, Data: data} }
	retry := func(d time.Duration, data string) hub.Message {
		return hub.Message{Topics: topics, Data: data, Retry: d}
	}
	tooLarge := bodyTestWantErr{status: http.StatusRequestEntityTooLarge, field: "data"}
	tests := []struct {
		name     string
		in       string
		maxEvent int64
		want     []hub.Message
		err      bodyTestWantErr // after the messages in want
	}{
		{name: "one event", in: "data: a\n\n", want: []hub.Message{m("a")}},
		{name: "LF lines", in: "data: a\ndata: b\n\n", want: []hub.Message{m("a\nb")}},
		{name: "CR lines", in: "data: a\rdata: b\r\r", want: []hub.Message{m("a\nb")}},
		{name: "CRLF lines", in: "data: a\r\ndata: b\r\n\r\n", want: []hub.Message{m("a\nb")}},
		{name: "mixed line endings", in: "data: 1\r\n\ndata: 2\r\rdata: 3\n\r\ndata: 4\r\n\r", want: []hub.Message{m("1"), m("2"), m("3"), m("4")}},
		{name: "CR then LF is one line end", in: "data: a\r\ndata: b\r\n\r\n", want: []hub.Message{m("a\nb")}},
		{name: "CR CR is two", in: "data: a\r\rdata: b\r\r", want: []hub.Message{m("a"), m("b")}},
		{name: "several events", in: "data: 1\n\ndata: 2\n\ndata: 3\n\n", want: []hub.Message{m("1"), m("2"), m("3")}},
		{name: "byte order mark", in: "\xEF\xBB\xBFdata: a\n\n", want: []hub.Message{m("a")}},
		{name: "byte order mark then CRLF", in: "\xEF\xBB\xBF\r\ndata: a\r\n\r\n", want: []hub.Message{m("a")}},
		{name: "only the first BOM is skipped", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", want: []hub.Message{m("b")}},
		{name: "BOM later is data", in: "data: \xEF\xBB\xBFa\n\n", want: []hub.Message{m("\uFEFFa")}},
		{name: "comments", in: ": hi\n:\ndata: a\n: between\ndata: b\n\n:bye\n", want: []hub.Message{m("a\nb")}},
		{name: "comment only", in: ": keep-alive\n\n", want: nil},
		{name: "field without colon", in: "data\ndata\n\n", want: []hub.Message{m("\n")}},
		{name: "field without colon then value", in: "data\ndata: x\n\n", want: []hub.Message{m("\nx")}},
		{name: "data without space", in: "data:a\n\n", want: []hub.Message{m("a")}},
		{name: "only one space is stripped", in: "data:   a \n\n", want: []hub.Message{m("  a ")}},
		{name: "colon in the value", in: "data: a: b\n\n", want: []hub.Message{m("a: b")}},
		{name: "tab is not stripped", in: "data:\ta\n\n", want: []hub.Message{m("\ta")}},
		{name: "NUL and separators are data", in: "data: a\x00b\u2028c\n\n", want: []hub.Message{m("a\x00b\u2028c")}},
		{name: "id is ignored", in: "id: 7\ndata: a\n\nid\ndata: b\n\nid: 9\n\n", want: []hub.Message{m("a"), m("b")}},
		{name: "unknown fields", in: "foo: bar\nDATA: no\ndata : no\ndata: a\n\n", want: []hub.Message{m("a")}},
		{name: "blank lines", in: "\n\n\r\n\rdata: a\n\n\n\n", want: []hub.Message{m("a")}},
		{name: "event name", in: "event: up\ndata: a\n\ndata: b\n\n", want: []hub.Message{named("up", "a"), m("b")}},
		{name: "event name without data is dropped", in: "event: up\n\ndata: b\n\n", want: []hub.Message{m("b")}},
		{name: "last event name wins", in: "event: x\nevent: y\ndata: a\n\n", want: []hub.Message{named("y", "a")}},
		{name: "event name with spaces", in: "event:  two words \ndata: a\n\n", want: []hub.Message{named(" two words ", "a")}},
		{name: "retry", in: "retry: 1500\ndata: a\n\ndata: b\n\n", want: []hub.Message{retry(1500*time.Millisecond, "a"), m("b")}},
		{name: "retry attaches to the next event", in: "retry: 1500\n\ndata: a\n\ndata: b\n\n", want: []hub.Message{retry(1500*time.Millisecond, "a"), m("b")}},
		{name: "retry after data", in: "data: a\nretry: 20\n\n", want: []hub.Message{retry(20*time.Millisecond, "a")}},
		{name: "last retry wins", in: "retry: 100\nretry: 200\ndata: a\n\n", want: []hub.Message{retry(200*time.Millisecond, "a")}},
		{name: "bad retries are ignored", in: "retry: soon\nretry: -5\nretry:  100\nretry: 1.5\nretry\ndata: a\n\n", want: []hub.Message{m("a")}},
		{name: "trailing event without blank line", in: "data: a\n\ndata: b\n", want: []hub.Message{m("a")}},
		{name: "trailing line without end", in: "data: a\n\ndata: b", want: []hub.Message{m("a")}},
		{name: "trailing event ended by CR", in: "data: a\n\ndata: b\r", want: []hub.Message{m("a")}},
		{name: "exactly max_event", in: "data: 12345\ndata: 6789\n\n", maxEvent: 10, want: []hub.Message{m("12345\n6789")}},
		{name: "data over max_event", in: "data: ok\n\ndata: 123456\ndata: 7890\n\n", maxEvent: 10, want: []hub.Message{m("ok")}, err: tooLarge},
		{name: "oversize line", in: "data: ok\n\ndata: " + strings.Repeat("x", 200) + "\n\n", maxEvent: 16, want: []hub.Message{m("ok")}, err: tooLarge},
		{name: "oversize line without end", in: "data: " + strings.Repeat("x", 200), maxEvent: 16, err: tooLarge},
		{name: "oversize comment", in: ": " + strings.Repeat("x", 200) + "\n", maxEvent: 16, err: tooLarge},
		{name: "empty data", in: "data: a\n\ndata:\n\n", want: []hub.Message{m("a")}, err: bodyTestWantErr{status: 400, field: "data"}},
		{name: "empty data without colon", in: "data\n\n", err: bodyTestWantErr{status: 400, field: "data"}},
		{name: "invalid UTF-8", in: "data: \xff\n\n", err: bodyTestWantErr{status: 400, field: "data"}},
		{name: "event with NUL", in: "event: a\x00b\ndata: x\n\n", err: bodyTestWantErr{status: 400, field: "event"}},
		{name: "event of 129 bytes", in: "event: " + strings.Repeat("e", 129) + "\ndata: x\n\n", err: bodyTestWantErr{status: 400, field: "event"}},
		{name: "empty", in: "", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxEvent := tc.maxEvent
			if maxEvent == 0 {
				maxEvent = bodyTestMaxEvent
			}
			check := func(how string, msgs []*hub.Message, err error) {
				t.Helper()
				var pe *PublishError
				if err != nil && !errors.As(err, &pe) {
					t.Fatalf("%s: error %v is not a *PublishError", how, err)
				}
				if tc.err.status == 0 && err != nil {
					t.Fatalf("%s: unexpected error %d %q (field %q) after %s", how, pe.Status, pe.Msg, pe.Field, bodyTestFormat(msgs))
				}
				if tc.err.status != 0 {
					if err == nil {
						t.Fatalf("%s: no error, want %d on %q; got %s", how, tc.err.status, tc.err.field, bodyTestFormat(msgs))
					}
					if pe.Status != tc.err.status || pe.Field != tc.err.field {
						t.Fatalf("%s: error %d field %q (%s), want %d field %q", how, pe.Status, pe.Field, pe.Msg, tc.err.status, tc.err.field)
					}
				}
				if len(msgs) != len(tc.want) {
					t.Fatalf("%s: emitted %d events (%s), want %d", how, len(msgs), bodyTestFormat(msgs), len(tc.want))
				}
				for i := range tc.want {
					if !reflect.DeepEqual(*msgs[i], tc.want[i]) {
						t.Fatalf("%s: event %d = %+v, want %+v", how, i, *msgs[i], tc.want[i])
					}
				}
			}
			whole, wholeErr := bodyTestStream(topics, maxEvent, bodyTestOneChunk(tc.in))
			check("one chunk", whole, wholeErr)
			bytewise, bytewiseErr := bodyTestStream(topics, maxEvent, bodyTestBytewise(tc.in))
			check("byte by byte", bytewise, bytewiseErr)
			// Every split in two, which puts a chunk boundary inside each
			// CRLF, each field name and the BOM.
			for i := 1; i < len(tc.in); i++ {
				got, err := bodyTestStream(topics, maxEvent, [][]byte{[]byte(tc.in[:i]), []byte(tc.in[i:])})
				if bodyTestDescribe(got, err) != bodyTestDescribe(whole, wholeErr) {
					t.Fatalf("split at %d gives %s; one chunk gives %s", i, bodyTestDescribe(got, err), bodyTestDescribe(whole, wholeErr))
				}
			}
			// readAll over a reader that returns one byte at a time.
			var viaReader []*hub.Message
			p := &streamParser{topics: topics, maxEvent: maxEvent, emit: func(m *hub.Message) error {
				viaReader = append(viaReader, m)
				return nil
			}}
			err := p.readAll(iotest.OneByteReader(strings.NewReader(tc.in)))
			check("readAll", viaReader, err)
			if p.count != len(viaReader) {
				t.Fatalf("count = %d after emitting %d", p.count, len(viaReader))
			}
		})
	}
}

// An event is emitted as soon as its blank line is read, not at the end
// of the body: a publisher may hold the request open.
func TestStreamParserEmitsEarly(t *testing.T) {
	in := "data: 1\n\n: comment\ndata: 2\ndata: 2b\n\nevent: x\ndata: 3\n\ndata: 4\n\n"
	for i := 0; i <= len(in); i++ {
		got, err := bodyTestStream([]string{"a"}, bodyTestMaxEvent, [][]byte{[]byte(in[:i])})
		if err != nil {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
		if want := strings.Count(in[:i], "\n\n"); len(got) != want {
			t.Fatalf("after %d bytes (%q) %d events emitted, want %d", i, in[:i], len(got), want)
		}
	}

	// With CR line ends the event goes out at the second CR, without
	// waiting to see whether an LF follows.
	var n int
	p := &streamParser{topics: []string{"a"}, maxEvent: bodyTestMaxEvent, emit: func(*hub.Message) error { n++; return nil }}
	steps := []struct {
		feed string
		want int
	}{
		{"data: a\r", 0},
		{"\r", 1},
		{"\n", 1}, // the LF belongs to the CR before it
		{"data: b\r\n", 1},
		{"\r", 2},
		{"\n", 2},
		{"\n", 2}, // a blank line with no data emits nothing
		{"data: c\n\n", 3},
	}
	for i, st := range steps {
		if err := p.feed([]byte(st.feed)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if n != st.want {
			t.Fatalf("step %d (%q): %d emitted, want %d", i, st.feed, n, st.want)
		}
	}
}

func TestStreamParserEmitError(t *testing.T) {
	hubDown := errors.New("hub down")
	calls := 0
	p := &streamParser{topics: []string{"a"}, maxEvent: bodyTestMaxEvent, emit: func(*hub.Message) error {
		calls++
		if calls == 2 {
			return hubDown
		}
		return nil
	}}
	err := p.feed([]byte("data: 1\n\ndata: 2\n\ndata: 3\n\n"))
	if !errors.Is(err, hubDown) {
		t.Fatalf("feed = %v, want the emit error", err)
	}
	if calls != 2 || p.count != 1 {
		t.Fatalf("emit called %d times, count %d; want 2 and 1", calls, p.count)
	}
}

func TestStreamParserReadError(t *testing.T) {
	broken := errors.New("connection reset")
	var n int
	p := &streamParser{topics: []string{"a"}, maxEvent: bodyTestMaxEvent, emit: func(*hub.Message) error { n++; return nil }}
	r := iotest.DataErrReader(&bodyTestErrAfter{data: []byte("data: 1\n\ndata: 2\n"), err: broken})
	if err := p.readAll(r); !errors.Is(err, broken) {
		t.Fatalf("readAll = %v, want the read error", err)
	}
	if n != 1 {
		t.Fatalf("%d events emitted before the read error, want 1", n)
	}
}

// bodyTestErrAfter returns its data, then err.
type bodyTestErrAfter struct {
	data []byte
	err  error
}

func (r *bodyTestErrAfter) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// The parser must not keep a reference to the caller's buffer: readAll
// reuses it for the next read.
func TestStreamParserCopiesInput(t *testing.T) {
	var got []*hub.Message
	p := &streamParser{topics: []string{"a"}, maxEvent: bodyTestMaxEvent, emit: func(m *hub.Message) error {
		got = append(got, m)
		return nil
	}}
	buf := []byte("event: ev\ndata: abc")
	if err := p.feed(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, bytes.Repeat([]byte("Z"), len(buf)))
	if err := p.feed([]byte("def\n\n")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Data != "abcdef" || got[0].Name != "ev" {
		t.Fatalf("got %s, want one event ev/abcdef", bodyTestFormat(got))
	}
}

// The same bound on the other body formats.
func TestHugeRetryOtherFormats(t *testing.T) {
	const ms = 20000000000000 // about 634 years
	check := func(how string, msgs []*hub.Message, perr *PublishError) {
		t.Helper()
		if perr != nil {
			if perr.Status != http.StatusBadRequest || perr.Field != "retry" {
				t.Errorf("%s: error %d on field %q (%s), want 400 on retry", how, perr.Status, perr.Field, perr.Msg)
			}
			return
		}
		if len(msgs) != 1 {
			t.Errorf("%s: %d messages", how, len(msgs))
			return
		}
		if got := msgs[0].Retry.Milliseconds(); got != ms {
			t.Errorf("%s: retry %d accepted as %d ms", how, int64(ms), got)
		}
	}
	msgs, perr := parseFormBody([]byte(fmt.Sprintf("topic=a&data=x&retry=%d", ms)), bodyTestMaxEvent)
	check("form", msgs, perr)
	msgs, perr = parseTextBody([]byte("x"), url.Values{"topic": {"a"}, "retry": {fmt.Sprint(ms)}}, bodyTestMaxEvent)
	check("text", msgs, perr)
	// In a stream an unusable retry is ignored, like any bad retry field.
	got, err := bodyTestStream([]string{"a"}, bodyTestMaxEvent, bodyTestOneChunk(fmt.Sprintf("retry: %d\ndata: x\n\n", ms)))
	if err != nil || len(got) != 1 {
		t.Fatalf("stream: %s", bodyTestDescribe(got, err))
	}
	if r := got[0].Retry; r != 0 && r.Milliseconds() != ms {
		t.Errorf("stream: retry %d became %d ms", int64(ms), r.Milliseconds())
	}
}

// bad is the expected 400 naming field.
func bad(field string) bodyTestWantErr {
	return bodyTestWantErr{status: http.StatusBadRequest, field: field}
}
