package integration

// A property test of the whole path: random events (nasty names and data)
// are published through every body format to a real Caddy and received by
// one subscriber decoded with go-sse's WHATWG parser. Each must arrive equal
// to what was sent, with line endings normalised to LF, in order, with none
// missing and none extra.
//
// The run is seeded; the seed is logged, and SSE_ROUNDTRIP_SEED=<seed>
// replays a run exactly.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const rtSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic alpha beta
	}
	sse_publish /publish {
		max_body  16MiB
		max_event 512KiB
	}
}
`

// rtPerFormat is how many random events go through each body format.
const rtPerFormat = 160

// rtEvent is one random event and what the subscriber must receive.
type rtEvent struct {
	topics   []string
	name     string // "" and "message" are the default type
	data     string // sent as a string
	jsonData any    // non-nil: sent as this JSON value instead of data (JSON formats)
	retry    int    // milliseconds; 0 for none
	want     string // the data the subscriber must receive
}

// wantType is go-sse's Type for the event: "" for the default type, which
// is sent without an event: line (EventSource dispatches it as "message").
func (e *rtEvent) wantType() string {
	if e.name == "message" {
		return ""
	}
	return e.name
}

// rtNormalize is what the wire does to data: every line ending (CRLF, then
// any lone CR, and LF) becomes LF. Nothing else changes.
func rtNormalize(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func rtSeed(t *testing.T) int64 {
	seed := time.Now().UnixNano()
	if s := os.Getenv("SSE_ROUNDTRIP_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("SSE_ROUNDTRIP_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay with SSE_ROUNDTRIP_SEED=%d)", seed, seed)
	return seed
}

// rtPieces are fragments that parsers and encoders tend to get wrong.
var rtPieces = []string{
	"\x00", "\u2028", "\u2029", "\u0085", "\uFEFF", "\t", "\v", "\f", "\x01", "\x7f", " ", "  ", ":", ": ",
	"\U0001F600", "\U0001F469\u200D\U0001F4BB", "é", "日本語", "\uFFFD", "\U0010FFFF",
	"data: x", "data:", "event: y", "id: 7", "retry: 5", "\\n", "\\r", `"q"`, "<&>", "%41", "+", "&topic=beta", "=", ";", "?",
}

// rtLineEnds are the separators put into data: all of them become LF.
var rtLineEnds = []string{"\n", "\r", "\r\n", "\n\n", "\r\r", "\r\n\r\n", "\n\r", "\r\r\n"}

// rtPiece is a random fragment: a nasty one, a random code point, or ASCII.
func rtPiece(rng *rand.Rand) string {
	switch r := rng.Intn(10); {
	case r < 3:
		return rtPieces[rng.Intn(len(rtPieces))]
	case r < 5:
		for {
			var c rune
			if rng.Intn(4) == 0 {
				c = rune(0x10000 + rng.Intn(0x10FFFF-0x10000+1))
			} else {
				c = rune(0x80 + rng.Intn(0xFFFF-0x80+1))
			}
			if utf8.ValidRune(c) {
				return string(c)
			}
		}
	default:
		b := make([]byte, 1+rng.Intn(12))
		for i := range b {
			b[i] = byte(' ' + rng.Intn('~'-' '+1))
		}
		return string(b)
	}
}

// rtName is a valid event name: any Unicode without CR, LF or NUL, at most
// 128 bytes; sometimes the default type, spelled "" or "message".
func rtName(rng *rand.Rand) string {
	switch r := rng.Intn(20); {
	case r < 3:
		return ""
	case r < 5:
		return "message"
	case r < 6: // exactly 128 bytes, multi-byte characters up to the edge
		var b strings.Builder
		for {
			p := rtNamePiece(rng)
			if b.Len()+len(p) > 128 {
				break
			}
			b.WriteString(p)
		}
		return b.String() + strings.Repeat("x", 128-b.Len())
	default:
		var b strings.Builder
		for n := 1 + rng.Intn(8); n > 0; n-- {
			p := rtNamePiece(rng)
			if b.Len()+len(p) > 128 {
				break
			}
			b.WriteString(p)
		}
		if b.Len() == 0 {
			return "n"
		}
		return b.String()
	}
}

func rtNamePiece(rng *rand.Rand) string {
	for {
		if p := rtPiece(rng); !strings.ContainsAny(p, "\r\n\x00") {
			return p
		}
	}
}

// rtData is random, never empty data: lines of anything (NUL, U+2028,
// emoji, leading spaces, ':' at the start, text that looks like fields),
// sometimes one line up to 64 KiB, separated and sometimes ended by LF, CR
// or CRLF in any mix.
func rtData(rng *rand.Rand) string {
	var b strings.Builder
	long := rng.Intn(25) == 0
	for n := 1 + rng.Intn(8); n > 0; n-- {
		switch {
		case long:
			long = false
			size := 1 + rng.Intn(64<<10)
			start := b.Len()
			for b.Len()-start < size {
				if rng.Intn(50) == 0 {
					b.WriteString(rtNamePiece(rng))
				} else {
					b.WriteString("0123456789abcdefghijklmnopqrstuvwxyz"[:1+rng.Intn(36)])
				}
			}
		default:
			if rng.Intn(4) == 0 {
				b.WriteString([]string{" ", "  ", ":", ": ", "data: ", "\uFEFF"}[rng.Intn(6)])
			}
			for k := rng.Intn(8); k > 0; k-- {
				b.WriteString(rtNamePiece(rng))
				if rng.Intn(6) == 0 {
					b.WriteString("\x00")
				}
			}
		}
		if n > 1 || rng.Intn(4) == 0 {
			b.WriteString(rtLineEnds[rng.Intn(len(rtLineEnds))])
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

func rtTopics(rng *rand.Rand) []string {
	return [][]string{{"alpha"}, {"beta"}, {"alpha", "beta"}, {"beta", "alpha"}}[rng.Intn(4)]
}

// rtNewEvent makes a random event; jsonOK allows data sent as a JSON value
// other than a string, which arrives as compact JSON.
func rtNewEvent(rng *rand.Rand, jsonOK bool) *rtEvent {
	e := &rtEvent{topics: rtTopics(rng), name: rtName(rng), data: rtData(rng)}
	e.want = rtNormalize(e.data)
	if jsonOK && rng.Intn(10) == 0 {
		e.jsonData = map[string]any{"s": e.data, "n": []any{1, 2.5, -3e-7, true, nil}, "o": map[string]any{"<k>": "\u2028&"}}
		compact, err := json.Marshal(e.jsonData)
		if err != nil {
			panic(err)
		}
		e.want = string(compact)
	}
	if rng.Intn(10) == 0 {
		e.retry = 1 + rng.Intn(100000)
	}
	return e
}

// rtJSONObject is the event as a JSON publish object.
func rtJSONObject(rng *rand.Rand, e *rtEvent) map[string]any {
	obj := map[string]any{}
	if len(e.topics) == 1 && rng.Intn(2) == 0 {
		obj["topic"] = e.topics[0]
	} else {
		obj["topics"] = e.topics
	}
	if e.name != "" || rng.Intn(2) == 0 {
		obj["event"] = e.name
	}
	if e.jsonData != nil {
		obj["data"] = e.jsonData
	} else {
		obj["data"] = e.data
	}
	if e.retry > 0 {
		obj["retry"] = e.retry
	}
	return obj
}

// rtMarshal encodes v compact or indented: indentation inside a non-string
// data value must not reach the subscriber.
func rtMarshal(rng *rand.Rand, v any) []byte {
	var b []byte
	var err error
	if rng.Intn(2) == 0 {
		b, err = json.Marshal(v)
	} else {
		b, err = json.MarshalIndent(v, " ", "\t")
	}
	if err != nil {
		panic(err)
	}
	return b
}

// rtReceiver checks what one subscriber receives against what was sent.
type rtReceiver struct {
	t    *testing.T
	s    *subscriber
	seed int64
	ids  map[string]string // id -> where it was received, to catch reuse
	seen map[string]int    // how many received events had each trait, logged
}

// tally counts the traits of a received event, so the log shows that the
// run covered them.
func (r *rtReceiver) tally(e *rtEvent) {
	for trait, has := range map[string]bool{
		"lone CR":           strings.Contains(strings.ReplaceAll(e.data, "\r\n", ""), "\r"),
		"CRLF":              strings.Contains(e.data, "\r\n"),
		"NUL":               strings.Contains(e.data, "\x00"),
		"U+2028":            strings.Contains(e.data, "\u2028"),
		"leading space":     strings.Contains("\n"+e.want, "\n "),
		"':' at line start": strings.Contains("\n"+e.want, "\n:"),
		"line ≥ 32KiB":      len(e.data) >= 32<<10,
		"JSON value data":   e.jsonData != nil,
		"default name \"\"": e.name == "",
		"name \"message\"":  e.name == "message",
		"128-byte name":     len(e.name) == 128,
	} {
		if has {
			r.seen[trait]++
		}
	}
}

// expect awaits the next event and checks it is e with the id the publish
// answer gave.
func (r *rtReceiver) expect(where string, e *rtEvent, res publishResult) {
	r.t.Helper()
	got := r.s.next()
	if got.Type != e.wantType() || got.Data != e.want || got.LastEventID != res.ID {
		r.t.Fatalf("%s (seed %d): received type %q id %q data %s\nwant       type %q id %q data %s\nsent name %q data %s%s",
			where, r.seed, got.Type, got.LastEventID, rtShow(got.Data),
			e.wantType(), res.ID, rtShow(e.want), e.name, rtShow(e.data), rtFirstDiff(got.Data, e.want))
	}
	if res.Delivered != 1 {
		r.t.Fatalf("%s: delivered = %d, want 1 (one subscriber of both topics counts once)", where, res.Delivered)
	}
	if prev, dup := r.ids[res.ID]; dup {
		r.t.Fatalf("%s: id %s was already used by %s", where, res.ID, prev)
	}
	r.ids[res.ID] = where
	r.tally(e)
}

func rtShow(s string) string {
	if len(s) > 160 {
		return fmt.Sprintf("%q… (%d bytes)", s[:160], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func rtFirstDiff(a, b string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			lo := max(0, i-20)
			return fmt.Sprintf("\nfirst difference at byte %d: received %q, want %q", i, a[lo:min(len(a), i+20)], b[lo:min(len(b), i+20)])
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("\nlengths differ: received %d bytes, want %d", len(a), len(b))
	}
	return ""
}

// rtPublish posts one request and decodes a 200 answer into out.
func rtPublish(t *testing.T, where, url, contentType string, body []byte, out any) {
	t.Helper()
	status, answer := post(t, client, url, contentType, bytes.NewReader(body))
	if status != http.StatusOK {
		t.Fatalf("%s: status %d %s\nbody: %s", where, status, answer, rtShow(string(body)))
	}
	if err := json.Unmarshal(answer, out); err != nil {
		t.Fatalf("%s: answer %s: %v", where, answer, err)
	}
}

func TestRoundtripEveryBodyFormat(t *testing.T) {
	t.Parallel()
	seed := rtSeed(t)
	rng := rand.New(rand.NewSource(seed))
	c := startCaddy(t, rtSite)
	pub := c.base + "/publish"
	r := &rtReceiver{t: t, seed: seed, ids: map[string]string{}, seen: map[string]int{},
		s: subscribe(t, client, c.base+"/events?topic=alpha&topic=beta").ready()}

	// application/json, one event per request.
	for i := 0; i < rtPerFormat; i++ {
		e := rtNewEvent(rng, true)
		where := fmt.Sprintf("json event %d", i)
		ctype := []string{"application/json", "application/json; charset=utf-8"}[rng.Intn(2)]
		var res publishResult
		rtPublish(t, where, pub, ctype, rtMarshal(rng, rtJSONObject(rng, e)), &res)
		r.expect(where, e, res)
	}

	// application/json arrays of 1 to 12 events, each received before the
	// next batch so no subscriber queue fills.
	for i := 0; i < rtPerFormat; {
		batch := make([]*rtEvent, min(1+rng.Intn(12), rtPerFormat-i))
		objs := make([]map[string]any, len(batch))
		for k := range batch {
			batch[k] = rtNewEvent(rng, true)
			objs[k] = rtJSONObject(rng, batch[k])
		}
		where := fmt.Sprintf("json array of events %d-%d", i, i+len(batch)-1)
		var res []publishResult
		rtPublish(t, where, pub, "application/json", rtMarshal(rng, objs), &res)
		if len(res) != len(batch) {
			t.Fatalf("%s: %d results for %d events", where, len(res), len(batch))
		}
		for k, e := range batch {
			r.expect(fmt.Sprintf("json array event %d", i+k), e, res[k])
		}
		i += len(batch)
	}

	// application/x-www-form-urlencoded.
	for i := 0; i < rtPerFormat; i++ {
		e := rtNewEvent(rng, false)
		where := fmt.Sprintf("form event %d", i)
		form := url.Values{"topic": e.topics, "data": {e.data}}
		if e.name != "" || rng.Intn(2) == 0 {
			form.Set("event", e.name)
		}
		if e.retry > 0 {
			form.Set("retry", strconv.Itoa(e.retry))
		}
		var res publishResult
		rtPublish(t, where, pub, "application/x-www-form-urlencoded", []byte(form.Encode()), &res)
		r.expect(where, e, res)
	}

	// text/plain (or no Content-Type): the body is the data, the rest is in
	// the query.
	for i := 0; i < rtPerFormat; i++ {
		e := rtNewEvent(rng, false)
		where := fmt.Sprintf("text event %d", i)
		q := url.Values{"topic": e.topics}
		if e.name != "" || rng.Intn(2) == 0 {
			q.Set("event", e.name)
		}
		if e.retry > 0 {
			q.Set("retry", strconv.Itoa(e.retry))
		}
		ctype := []string{"text/plain", "text/plain; charset=utf-8", ""}[rng.Intn(3)]
		var res publishResult
		rtPublish(t, where, pub+"?"+q.Encode(), ctype, []byte(e.data), &res)
		r.expect(where, e, res)
	}

	rtHeldStream(t, rng, r, pub)

	// Nothing extra is queued behind the last event.
	sentinel := &rtEvent{name: "end", data: "sentinel", want: "sentinel"}
	r.expect("sentinel", sentinel, publishJSON(t, pub, map[string]any{"topic": "alpha", "event": "end", "data": "sentinel"}))

	t.Logf("%d events received as sent; traits covered: %v", len(r.ids), r.seen)

	// A lone CR never reaches the wire.
	raw := r.s.rawString()
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			t.Fatalf("a lone CR at byte %d of the stream: %q", i, raw[max(0, i-40):min(len(raw), i+40)])
		}
	}
	// Every line is a field of the wire format, and the default type is
	// never spelled out.
	lines := strings.Split(raw, "\n")
	for _, l := range lines[:len(lines)-1] { // the last is not ended yet
		known := l == "" || strings.HasPrefix(l, ":")
		for _, f := range []string{"id: ", "event: ", "data: ", "retry: "} {
			known = known || strings.HasPrefix(l, f)
		}
		if !known || l == "event: message" || l == "event: " {
			t.Fatalf("unexpected line on the wire: %s", rtShow(l))
		}
	}
}

// rtHeldStream publishes events through one held text/event-stream request,
// written event by event; each must reach the subscriber before the next is
// written. By the WHATWG rules every data line of the body becomes a line of
// the data joined by LF, whatever ended it (LF, CR or CRLF): so data with
// CR or CRLF, written as data lines split at those line ends, arrives
// normalised exactly as through the other formats. One space after "data:"
// is stripped, so lines keep their own leading spaces when written after
// "data: ". id fields, comments and unknown fields are ignored; a leading
// BOM of the body is skipped.
func rtHeldStream(t *testing.T, rng *rand.Rand, r *rtReceiver, pub string) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	type answer struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, pub+"?topic=alpha&topic=beta", pr)
		if err != nil {
			done <- answer{err: err}
			return
		}
		req.Header.Set("Content-Type", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, b, err}
	}()
	await := func() answer {
		select {
		case a := <-done:
			return a
		case <-time.After(eventWait):
			t.Fatalf("event-stream publish: no answer within %v", eventWait)
		}
		return answer{}
	}

	sent := make([]*rtEvent, 0, rtPerFormat)
	received := make([]string, 0, rtPerFormat) // ids, as the subscriber saw them
	for i := 0; i < rtPerFormat; i++ {
		e := rtNewEvent(rng, false)
		body := rtStreamEvent(rng, e)
		if i == 0 && rng.Intn(2) == 0 {
			body = append([]byte("\xEF\xBB\xBF"), body...)
		}
		if _, err := pw.Write(body); err != nil {
			a := await()
			t.Fatalf("event-stream event %d: write: %v; answer %d %s %v", i, err, a.status, a.body, a.err)
		}
		got := r.s.next()
		where := fmt.Sprintf("event-stream event %d", i)
		if got.Type != e.wantType() || got.Data != e.want {
			t.Fatalf("%s (seed %d): received type %q data %s\nwant       type %q data %s\nwritten %s%s",
				where, r.seed, got.Type, rtShow(got.Data), e.wantType(), rtShow(e.want), rtShow(string(body)), rtFirstDiff(got.Data, e.want))
		}
		r.tally(e)
		sent = append(sent, e)
		received = append(received, got.LastEventID)
	}
	pw.Close()
	a := await()
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("event-stream publish: answer %d %s %v", a.status, a.body, a.err)
	}
	// A held stream is answered with a summary: the count, the first and
	// last ids, and the deliveries summed.
	var sum struct {
		Published int    `json:"published"`
		FirstID   string `json:"first_id"`
		LastID    string `json:"last_id"`
		Delivered int    `json:"delivered"`
	}
	if err := json.Unmarshal(a.body, &sum); err != nil || sum.Published != len(sent) {
		t.Fatalf("event-stream publish: answer %s (%v), want published %d", rtShow(string(a.body)), err, len(sent))
	}
	if sum.FirstID != received[0] || sum.LastID != received[len(received)-1] || sum.Delivered != len(sent) {
		t.Fatalf("event-stream publish: answer %s; the subscriber received ids %s to %s, %d events",
			rtShow(string(a.body)), received[0], received[len(received)-1], len(sent))
	}
	for i := range sent {
		where := fmt.Sprintf("event-stream event %d", i)
		if prev, dup := r.ids[received[i]]; dup {
			t.Fatalf("%s: id %s was already used by %s", where, received[i], prev)
		}
		r.ids[received[i]] = where
	}
}

// rtSplitLines splits data at every line end (CRLF, CR, LF) as a WHATWG
// parser would.
func rtSplitLines(data string) []string {
	return strings.Split(rtNormalize(data), "\n")
}

// rtStreamEvent writes e as one event of a text/event-stream body: fields in
// several spellings, random line ends, ignored fields mixed in, ended by a
// blank line that dispatches it.
func rtStreamEvent(rng *rand.Rand, e *rtEvent) []byte {
	var lines []string
	for _, l := range rtSplitLines(e.data) {
		switch {
		case l == "" && rng.Intn(3) == 0:
			lines = append(lines, "data") // a field without a colon has an empty value
		case l != "" && l[0] != ' ' && rng.Intn(3) == 0:
			lines = append(lines, "data:"+l) // no space to strip
		default:
			lines = append(lines, "data: "+l)
		}
	}
	// The event line may come anywhere among the data lines.
	var evLine string
	switch {
	case e.name == "":
		evLine = []string{"", "event:", "event", "event: "}[rng.Intn(4)]
	case e.name[0] != ' ' && rng.Intn(3) == 0:
		evLine = "event:" + e.name
	default:
		evLine = "event: " + e.name
	}
	decoy := rng.Intn(8) == 0
	if decoy && evLine == "" {
		evLine = "event:"
	}
	if evLine != "" {
		at := rng.Intn(len(lines) + 1)
		lines = append(lines[:at], append([]string{evLine}, lines[at:]...)...)
	}
	if decoy { // an earlier event line is overridden by the later one
		lines = append([]string{"event: decoy"}, lines...)
	}
	if e.retry > 0 {
		at := rng.Intn(len(lines) + 1)
		lines = append(lines[:at], append([]string{"retry: " + strconv.Itoa(e.retry)}, lines[at:]...)...)
	}
	for n := rng.Intn(3); n > 0; n-- { // fields the publish ignores
		ignored := []string{": a comment " + rtNamePiece(rng), ":", "id: " + rtNamePiece(rng), "id", "foo: bar", "retry: soon", "Data: not data", "data : not data"}
		at := rng.Intn(len(lines) + 1)
		lines = append(lines[:at], append([]string{ignored[rng.Intn(len(ignored))]}, lines[at:]...)...)
	}

	var b strings.Builder
	// Blank lines between events dispatch nothing. After a CR an LF would
	// join it as one CRLF, which is harmless here.
	if rng.Intn(6) == 0 {
		b.WriteString([]string{"\n", "\r\n", "\r", "\n\n"}[rng.Intn(4)])
	}
	end := ""
	for _, l := range lines {
		end = []string{"\n", "\r", "\r\n"}[rng.Intn(3)]
		b.WriteString(l)
		b.WriteString(end)
	}
	// The blank line. After a field ended by a lone CR, an LF would only
	// complete that CRLF and dispatch nothing, so it needs a CR.
	blank := []string{"\n", "\r", "\r\n"}[rng.Intn(3)]
	if end == "\r" && blank == "\n" {
		blank = "\r\n"
	}
	b.WriteString(blank)
	return []byte(b.String())
}
