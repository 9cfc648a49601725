package integration

// The differential test against Mercure's own hub (issue 16, "Proof"): the
// same requests go to Mercure and to sse_mercure, and the answers are
// compared (status, the headers that matter, bodies, the first events of a
// stream) after the volatile parts are normalised.
//
//   - modern mode against Mercure 1.0: Mercure's answers are golden
//     transcripts in testdata/mercure-oracle/1.0 (the proxy does not serve
//     1.0; oracle/record.sh re-records them from a build of the spec's
//     commit), replayed here against sse_mercure.
//   - compatibility mode against Mercure 0.24.2, live: oracle/build.sh
//     builds Mercure's Caddy module from the Go module proxy in a test-only
//     module (oracle/), and this test runs it side by side with sse_mercure
//     in protocol_version_compatibility 8.
//
// Mercure runs only as a black box; nothing of it is linked into the
// product (TestMercureOracleNotInProductModule).
//
// The table is in mercure_oracle_table_test.go, the known mismatches in
// mercure_oracle_known_test.go.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/testneeds"
)

// oracleDir holds the golden transcripts, one directory per Mercure version.
const oracleDir = "../testdata/mercure-oracle"

// oracleStreamWait bounds how long a stream step waits for the events it
// expects. It is a safety net: a hub that sends them all ends the wait at
// once; one that sends fewer is recorded as such after the wait.
const oracleStreamWait = 2500 * time.Millisecond

// oStep is one request of a case. Every string may hold the case's
// placeholders: {T} (the case's topic prefix, an https URL of its own),
// {SUB} (the first "subscriber" an earlier answer of the case named,
// percent-encoded as one path segment), {ETAG} (the last ETag an earlier
// answer carried),
// {TQ} ({T} percent-encoded as one path segment), {R} (the resource
// identifier), {BASE} (the hub's origin) and {TOKEN:name} (a token of
// oracleTokens, minted for this hub).
type oStep struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`             // absolute path, without query
	Query  []string `json:"query,omitempty"`  // key, value, key, value…; each escaped
	Header []string `json:"header,omitempty"` // "Name: value"
	Form   []string `json:"form,omitempty"`   // key, value…: a form body
	Body   string   `json:"body,omitempty"`   // a raw body, when Form is nil
	// Events > 0 reads the answer as a stream: up to Events events, within
	// oracleStreamWait. With Open, the stream stays open while the next
	// steps run and its events are read at the end of the case.
	Events int  `json:"events,omitempty"`
	Open   bool `json:"open,omitempty"`
}

// oCase is one row of the differential table.
type oCase struct {
	Name  string  // unique; also the transcript's file name
	Hub   string  // which hub configuration (oracleHubs); "cfg#x" runs cfg in an instance of its own
	Steps []oStep // sent in order, on one hub, sharing its state
	Why   string  // what the row checks (the spec or issue point)
}

// oEvent is one SSE event as received.
type oEvent struct {
	ID    string `json:"id,omitempty"`
	Event string `json:"event,omitempty"`
	Data  string `json:"data"`
	Retry string `json:"retry,omitempty"`
}

// oAnswer is what one step got back, normalised.
type oAnswer struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	Events  []oEvent          `json:"events,omitempty"`
	Error   string            `json:"error,omitempty"` // a transport error instead of an answer
}

// oTranscript is one golden file: the case as sent and Mercure's answers.
type oTranscript struct {
	Mercure struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	} `json:"mercure"`
	Case    string    `json:"case"`
	Hub     string    `json:"hub"`
	Why     string    `json:"why,omitempty"`
	Steps   []oStep   `json:"steps"` // templated, as in the table
	Answers []oAnswer `json:"answers"`
}

// oracleHeaders are the response headers compared. Date, Content-Length,
// Server, Vary and the like are not part of the protocol.
var oracleHeaders = []string{
	"Content-Type",
	"WWW-Authenticate",
	"Mercure-Last-Event-ID",
	"Last-Event-ID",
	"Link",
	"Access-Control-Allow-Origin",
	"Access-Control-Allow-Credentials",
	"Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers",
	"Access-Control-Expose-Headers",
	"ETag",
	"Cache-Control",
}

// oracleHub is a running hub (Mercure's or sse_mercure) and what a case
// needs to address it.
type oracleHub struct {
	proc   *caddyProc
	base   string // http://127.0.0.1:port
	tokens map[string]string
}

// oracleClient sends the requests: no cookie jar, no redirects followed,
// a fresh connection per request so that one stream never delays another.
var oracleClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 10 * time.Second},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// subst replaces a case's placeholders in s.
func (h *oracleHub) subst(c oCase, s string) string {
	topic := "https://example.com/oracle/" + c.Name
	r := strings.NewReplacer(
		"{TQ}", url.QueryEscape(topic),
		"{T}", topic,
		"{R}", h.base+"/.well-known/mercure",
		"{BASE}", h.base,
	)
	s = r.Replace(s)
	for strings.Contains(s, "{TOKEN:") {
		i := strings.Index(s, "{TOKEN:")
		j := strings.Index(s[i:], "}")
		if j < 0 {
			break
		}
		name := s[i+len("{TOKEN:") : i+j]
		tok, ok := h.tokens[name]
		if !ok {
			tok = "NO-SUCH-TOKEN-" + name
		}
		s = s[:i] + tok + s[i+j+1:]
	}
	return s
}

func encodePairs(h *oracleHub, c oCase, kv []string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(h.subst(c, kv[i])))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(h.subst(c, kv[i+1])))
	}
	return b.String()
}

// openStream is a stream step left open while later steps run.
type openStream struct {
	index  int
	want   int
	events chan oEvent
	cancel context.CancelFunc
	done   chan struct{}
	alive  chan struct{} // closed on the stream's first line
}

// run sends c's steps to h and returns the normalised answers.
func (h *oracleHub) run(t *testing.T, c oCase) []oAnswer {
	t.Helper()
	answers := make([]oAnswer, len(c.Steps))
	var open []*openStream
	sub := ""  // {SUB}: the first subscriber an answer named
	etag := "" // {ETAG}: the last ETag answered
	defer func() {
		for _, o := range open {
			o.cancel()
			<-o.done
		}
	}()
	for i, st := range c.Steps {
		method := st.Method
		if method == "" {
			method = http.MethodGet
		}
		u := h.base + strings.ReplaceAll(h.subst(c, st.Path), "{SUB}", url.QueryEscape(sub))
		if len(st.Query) > 0 {
			u += "?" + encodePairs(h, c, st.Query)
		}
		var body io.Reader
		switch {
		case st.Form != nil:
			body = strings.NewReader(encodePairs(h, c, st.Form))
		case st.Body != "":
			body = strings.NewReader(h.subst(c, st.Body))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			cancel()
			t.Fatalf("%s step %d: %v", c.Name, i, err)
		}
		if st.Form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, hv := range st.Header {
			name, value, _ := strings.Cut(hv, ":")
			req.Header.Add(strings.TrimSpace(name), strings.ReplaceAll(strings.TrimSpace(h.subst(c, value)), "{ETAG}", etag))
		}
		resp, err := oracleClient.Do(req)
		if err != nil {
			cancel()
			answers[i] = oAnswer{Error: "no answer"}
			continue
		}
		a := oAnswer{Status: resp.StatusCode, Headers: map[string]string{}}
		for _, name := range oracleHeaders {
			if v := resp.Header.Values(name); len(v) > 0 {
				a.Headers[name] = strings.Join(v, ", ")
			}
		}
		if v := resp.Header.Get("ETag"); v != "" {
			etag = v
		}
		isStream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
		switch {
		case (st.Events > 0 || st.Open) && isStream:
			o := &openStream{index: i, want: st.Events, events: make(chan oEvent, st.Events+16), cancel: cancel, done: make(chan struct{}), alive: make(chan struct{})}
			go func() {
				defer close(o.done)
				defer resp.Body.Close()
				readSSE(resp.Body, o.events, o.alive)
			}()
			if st.Open {
				// A hub may send the head before the subscription is in
				// place (Mercure does), so the next step waits for the
				// stream's first line: a heartbeat comment, which the hub
				// sends from its subscriber loop (heartbeat 100ms in every
				// configuration). The timer is only a safety net.
				select {
				case <-o.alive:
				case <-o.done:
				case <-time.After(5 * time.Second):
					t.Logf("%s step %d: the stream sent nothing within 5s", c.Name, i)
				}
				open = append(open, o)
			} else {
				a.Events = o.collect()
				o.cancel()
				<-o.done
			}
		case isStream:
			// A stream nobody asked events of: its head is the answer.
			resp.Body.Close()
			cancel()
		default:
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			cancel()
			a.Body = string(b)
			if m := subscriberRe.FindStringSubmatch(a.Body); m != nil && sub == "" {
				sub = m[1]
			}
		}
		answers[i] = a
	}
	for _, o := range open {
		answers[o.index].Events = o.collect()
		o.cancel()
		<-o.done
	}
	open = nil
	return normaliseAnswers(h, c, answers)
}

// collect reads up to o.want events, waiting at most oracleStreamWait.
func (o *openStream) collect() []oEvent {
	var got []oEvent
	deadline := time.NewTimer(oracleStreamWait)
	defer deadline.Stop()
	for len(got) < o.want {
		select {
		case e, ok := <-o.events:
			if !ok {
				return got
			}
			got = append(got, e)
		case <-deadline.C:
			return got
		}
	}
	return got
}

// readSSE parses an event stream (comments and heartbeats dropped) into
// out, closing it at the end of the stream.
func readSSE(r io.Reader, out chan<- oEvent, alive chan struct{}) {
	defer close(out)
	first := true
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var e oEvent
	var data []string
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if first {
			close(alive)
			first = false
		}
		if line == "" {
			if seen {
				e.Data = strings.Join(data, "\n")
				select {
				case out <- e:
				default: // more than asked for: not recorded
				}
			}
			e, data, seen = oEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		seen = true
		switch field {
		case "id":
			e.ID = value
		case "event":
			e.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			e.Retry = value
		}
	}
}

// volatileIn finds, in order, the values of s a hub makes up: uuids (with
// their urn:uuid: prefix when they have one) and cursors.
func volatileIn(s string) []string {
	type hit struct {
		at int
		v  string
	}
	var hits []hit
	for _, m := range uuidRe.FindAllStringIndex(s, -1) {
		v := s[m[0]:m[1]]
		if m[0] >= 9 && s[m[0]-9:m[0]] == "urn:uuid:" {
			hits = append(hits, hit{m[0] - 9, "urn:uuid:" + v})
		}
		hits = append(hits, hit{m[0], v})
	}
	for _, m := range cursorRe.FindAllStringSubmatchIndex(s, -1) {
		hits = append(hits, hit{m[2], s[m[2]:m[3]]})
	}
	for _, m := range lastIDAttr.FindAllStringSubmatchIndex(s, -1) {
		hits = append(hits, hit{m[2], s[m[2]:m[3]]})
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].at < hits[j].at })
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.v
	}
	return out
}

var (
	subscriberRe = regexp.MustCompile(`"subscriber":\s*"([^"]+)"`)
	cursorRe     = regexp.MustCompile(`"(?:lastEventID|last_event_id|lastEventId)":\s*"([^"]+)"`)
	uuidRe       = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	lastIDAttr   = regexp.MustCompile(`last-event-id="?([^";,\s]+)"?`)
)

// normaliseAnswers replaces what differs from run to run: the hub's
// origin becomes {BASE}; ids the hub made up (publish answers, event ids,
// cursors, uuids) become <id1>, <id2>… in order of first appearance within
// the case, so that an answer naming the same id twice still says so; an
// ETag becomes <etag>. Ids the case itself chose (they appear in its
// requests) are kept as they are. JSON bodies are re-indented with sorted
// keys, so that key order does not count.
func normaliseAnswers(h *oracleHub, c oCase, answers []oAnswer) []oAnswer {
	var sent strings.Builder
	for _, st := range c.Steps {
		sent.WriteString(h.subst(c, st.Path+" "+strings.Join(st.Query, " ")+" "+strings.Join(st.Header, " ")+" "+strings.Join(st.Form, " ")+" "+st.Body))
	}
	requested := sent.String()
	ids := map[string]string{}
	register := func(v string) {
		v = strings.TrimSpace(v)
		if v == "" || v == "earliest" || strings.Contains(requested, v) {
			return
		}
		if _, ok := ids[v]; !ok {
			ids[v] = fmt.Sprintf("<id%d>", len(ids)+1)
		}
	}
	// Collect in order of appearance: each step's headers, then its body
	// (canonical JSON, or a publish answer), then its events.
	for _, a := range answers {
		for _, name := range []string{"Mercure-Last-Event-ID", "Last-Event-ID"} {
			if v := a.Headers[name]; v != "" {
				register(v)
			}
		}
		for _, m := range lastIDAttr.FindAllStringSubmatch(a.Headers["Link"], -1) {
			register(m[1])
		}
		body := canonicalJSON(a.Body)
		if a.Status >= 200 && a.Status < 300 && body != "" && !strings.Contains(body, "\n") && len(body) < 200 && !strings.HasPrefix(body, "{") {
			register(body)
		}
		for _, v := range volatileIn(body) {
			register(v)
		}
		for _, e := range a.Events {
			register(e.ID)
			for _, v := range volatileIn(canonicalJSON(e.Data)) {
				register(v)
			}
		}
	}
	// Longest first, so that "urn:uuid:x" wins over "x".
	keys := make([]string, 0, len(ids))
	for k := range ids {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	pairs := []string{h.base, "{BASE}"}
	for _, k := range keys {
		pairs = append(pairs, k, ids[k])
		if e := url.QueryEscape(k); e != k {
			pairs = append(pairs, e, ids[k])
		}
	}
	rep := strings.NewReplacer(pairs...)
	out := make([]oAnswer, len(answers))
	for i, a := range answers {
		n := oAnswer{Status: a.Status, Error: a.Error, Body: rep.Replace(canonicalJSON(a.Body))}
		if len(a.Headers) > 0 {
			n.Headers = map[string]string{}
			for k, v := range a.Headers {
				if k == "ETag" {
					v = "<etag>"
				}
				n.Headers[k] = rep.Replace(v)
			}
		}
		for _, e := range a.Events {
			n.Events = append(n.Events, oEvent{ID: rep.Replace(e.ID), Event: e.Event, Data: rep.Replace(canonicalJSON(e.Data)), Retry: e.Retry})
		}
		out[i] = n
	}
	return compactIDs(out)
}

var idToken = regexp.MustCompile(`<id(\d+)>`)

// compactIDs renumbers the <idN> of normalised answers <id1>, <id2>… in
// order of first appearance (each step's headers by name, its body, its
// events), without gaps. The numbers normaliseAnswers hands out follow
// what it registers, and a urn:uuid registers twice (prefixed and bare):
// a hub whose cursors are urn:uuids (Mercure 0.24.2) numbered the ids
// after them one further than a hub whose cursors are not (sse_mercure's
// "#…" ids), and the same subscriber read as <id4> against <id3>. Which
// ids are the same and which differ is kept. Recorded transcripts are
// compacted when read, so they need not be recorded again.
func compactIDs(answers []oAnswer) []oAnswer {
	renum := map[string]string{}
	see := func(s string) {
		for _, m := range idToken.FindAllString(s, -1) {
			if _, ok := renum[m]; !ok {
				renum[m] = fmt.Sprintf("<id%d>", len(renum)+1)
			}
		}
	}
	for _, a := range answers {
		names := make([]string, 0, len(a.Headers))
		for k := range a.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			see(a.Headers[k])
		}
		see(a.Body)
		for _, e := range a.Events {
			see(e.ID)
			see(e.Data)
		}
	}
	re := func(s string) string {
		return idToken.ReplaceAllStringFunc(s, func(m string) string { return renum[m] })
	}
	out := make([]oAnswer, len(answers))
	for i, a := range answers {
		n := a
		n.Body = re(a.Body)
		if a.Headers != nil {
			n.Headers = make(map[string]string, len(a.Headers))
			for k, v := range a.Headers {
				n.Headers[k] = re(v)
			}
		}
		n.Events = nil
		for _, e := range a.Events {
			e.ID, e.Data = re(e.ID), re(e.Data)
			n.Events = append(n.Events, e)
		}
		out[i] = n
	}
	return out
}

// canonicalJSON re-encodes a JSON object with sorted keys; anything else is
// returned as is.
func canonicalJSON(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		return s
	}
	var v any
	if json.Unmarshal([]byte(t), &v) != nil {
		return s
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return s
	}
	return string(b)
}

// diffAnswers lists how ours differs from theirs, step by step. Error
// bodies (status >= 400) are not compared: their prose is free text in the
// spec; what a client acts on is the status and the WWW-Authenticate error
// code.
func diffAnswers(c oCase, ours, theirs []oAnswer) []string {
	var d []string
	for i := range theirs {
		if i >= len(ours) {
			d = append(d, fmt.Sprintf("step %d: no answer from ours", i))
			continue
		}
		o, th := ours[i], theirs[i]
		p := fmt.Sprintf("step %d (%s %s)", i, methodOf(c.Steps[i]), c.Steps[i].Path)
		if o.Error != th.Error {
			d = append(d, fmt.Sprintf("%s: transport ours %q theirs %q", p, o.Error, th.Error))
		}
		if o.Status != th.Status {
			d = append(d, fmt.Sprintf("%s: status ours %d theirs %d", p, o.Status, th.Status))
		}
		for _, name := range oracleHeaders {
			if o.Headers[name] != th.Headers[name] && !equivalentHeader(name, o.Headers[name], th.Headers[name]) {
				d = append(d, fmt.Sprintf("%s: header %s ours %q theirs %q", p, name, o.Headers[name], th.Headers[name]))
			}
		}
		if th.Status < 400 && o.Body != th.Body {
			d = append(d, fmt.Sprintf("%s: body %s", p, bodyDiff(o.Body, th.Body)))
		}
		if len(o.Events) != len(th.Events) {
			d = append(d, fmt.Sprintf("%s: %d events ours, %d theirs: ours %s theirs %s", p, len(o.Events), len(th.Events), clip(fmt.Sprint(o.Events)), clip(fmt.Sprint(th.Events))))
		} else {
			for j := range th.Events {
				oe, te := o.Events[j], th.Events[j]
				if oe.ID != te.ID || oe.Event != te.Event || oe.Retry != te.Retry {
					d = append(d, fmt.Sprintf("%s: event %d ours id=%q event=%q retry=%q theirs id=%q event=%q retry=%q", p, j, oe.ID, oe.Event, oe.Retry, te.ID, te.Event, te.Retry))
				}
				if oe.Data != te.Data {
					d = append(d, fmt.Sprintf("%s: event %d data %s", p, j, bodyDiff(oe.Data, te.Data)))
				}
			}
		}
	}
	return d
}

// bodyDiff shows two bodies by their differing lines (JSON bodies are one
// key per line after normalisation), or both whole when short.
func bodyDiff(ours, theirs string) string {
	if len(ours)+len(theirs) < 200 {
		return fmt.Sprintf("ours %q theirs %q", ours, theirs)
	}
	ol, tl := strings.Split(ours, "\n"), strings.Split(theirs, "\n")
	in := func(lines []string, l string) bool {
		for _, x := range lines {
			if x == l {
				return true
			}
		}
		return false
	}
	var b strings.Builder
	b.WriteString("(lines only in ours +, only in theirs -):")
	for _, l := range ol {
		if !in(tl, l) {
			b.WriteString(" +" + strings.TrimSpace(l))
		}
	}
	for _, l := range tl {
		if !in(ol, l) {
			b.WriteString(" -" + strings.TrimSpace(l))
		}
	}
	return b.String()
}

func methodOf(s oStep) string {
	if s.Method == "" {
		return http.MethodGet
	}
	return s.Method
}

func clip(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		return fmt.Sprintf("%q…(%d bytes)", s[:300], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// startOracleCaddy runs bin (Mercure's or ours) with the site fragment,
// as startCaddyWith does for ours; {DIR} is the process's own directory.
func startOracleCaddy(t *testing.T, bin, site string) *caddyProc {
	t.Helper()
	p := newCaddyProc(t, "")
	p.start(bin, strings.ReplaceAll(p.caddyfile(site), "{DIR}", p.dir))
	return p
}

// startOracleHub starts one hub configuration of oracleHubs: Mercure's
// (bin set) or ours (bin empty: the Caddy built by TestMain).
func startOracleHub(t *testing.T, bin string, cfg oracleHubConfig, tokens func(base string) map[string]string) *oracleHub {
	t.Helper()
	site := cfg.ours
	if bin != "" {
		site = cfg.mercure
	} else {
		bin = caddyBin
	}
	p := startOracleCaddy(t, bin, site)
	return &oracleHub{proc: p, base: p.base, tokens: tokens(p.base)}
}

// oracleBinary finds a Mercure build made by oracle/build.sh, or skips
// loudly (fails with CI=true), as for any outside program.
func oracleBinary(t *testing.T, version string) string {
	t.Helper()
	env := "MERCURE_ORACLE_" + strings.NewReplacer(".", "").Replace(version)
	path := os.Getenv(env)
	if path == "" {
		abs, _ := filepath.Abs(filepath.Join("..", "oracle", "bin", "mercure-"+version))
		path = abs
	}
	return testneeds.Binary(t, path, "the differential test against Mercure "+version,
		"bash oracle/build.sh "+version+" (or set "+env+")")
}

// oracleCommit is the Mercure commit a build of oracle/build.sh came from.
func oracleCommit(bin string) string {
	b, err := os.ReadFile(bin + ".commit")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// runTable runs cases against one hub configuration at a time, starting
// each hub once for all its cases, in table order.
func runTable(t *testing.T, cases []oCase, hubs map[string]oracleHubConfig, start func(t *testing.T, cfg oracleHubConfig) *oracleHub, each func(t *testing.T, h *oracleHub, c oCase)) {
	t.Helper()
	var order []string
	byHub := map[string][]oCase{}
	for _, c := range cases {
		// "main#x" is the "main" configuration in an instance of its own.
		if _, ok := hubs[hubConfigName(c.Hub)]; !ok {
			t.Fatalf("case %s: no hub %q", c.Name, c.Hub)
		}
		if _, ok := byHub[c.Hub]; !ok {
			order = append(order, c.Hub)
		}
		byHub[c.Hub] = append(byHub[c.Hub], c)
	}
	for _, name := range order {
		t.Run(name, func(t *testing.T) {
			h := start(t, hubs[hubConfigName(name)])
			for _, c := range byHub[name] {
				each(t, h, c)
			}
		})
	}
}

func hubConfigName(hub string) string {
	name, _, _ := strings.Cut(hub, "#")
	return name
}

// oracleMismatches collects every mismatch of a run for the report.
type oracleMismatches struct {
	mu      sync.Mutex
	rows    []string
	entries []string // Go map entries for the known list
}

func (m *oracleMismatches) add(mode string, c oCase, diffs []string, known string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	status := "NOT LISTED"
	if known != "" {
		status = "listed: " + known
	}
	m.rows = append(m.rows, fmt.Sprintf("### %s / %s\n%s (hub %s; %s)\n\n- %s\n", mode, c.Name, c.Why, c.Hub, status, strings.Join(diffs, "\n- ")))
	m.entries = append(m.entries, fmt.Sprintf("\t%q: %q,", c.Name, diffSummary(diffs)))
}

// write puts the report where MERCURE_ORACLE_REPORT says, if it says.
func (m *oracleMismatches) write(t *testing.T, title string) {
	path := os.Getenv("MERCURE_ORACLE_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "## %s: %d cases differ\n\n%s\nAs known-list entries:\n\n```go\n%s\n```\n\n", title, len(m.rows), strings.Join(m.rows, "\n"), strings.Join(m.entries, "\n"))
}

var diffStepRe = regexp.MustCompile(`^step (\d+) \([^)]*\): (\w+) ?(\S*)`)
var diffStatusRe = regexp.MustCompile(`status ours (\d+) theirs (\d+)`)
var diffEventsRe = regexp.MustCompile(`(\d+) events ours, (\d+) theirs`)

// diffSummary is a one-line digest of a case's differences: which step,
// which status, which headers, body or events. A "to fix" entry holds it,
// so that a listed row which starts to differ otherwise is noticed.
func diffSummary(diffs []string) string {
	var parts []string
	seen := map[string]bool{}
	for _, d := range diffs {
		m := diffStepRe.FindStringSubmatch(d)
		if m == nil {
			continue
		}
		var p string
		switch m[2] {
		case "status":
			s := diffStatusRe.FindStringSubmatch(d)
			p = fmt.Sprintf("s%s status %s, Mercure %s", m[1], s[1], s[2])
		case "header":
			p = fmt.Sprintf("s%s %s", m[1], m[3])
		case "body":
			p = fmt.Sprintf("s%s body", m[1])
		case "event":
			p = fmt.Sprintf("s%s event fields", m[1])
		case "transport":
			p = fmt.Sprintf("s%s transport", m[1])
		default:
			if e := diffEventsRe.FindStringSubmatch(d); e != nil {
				p = fmt.Sprintf("s%s %s events, Mercure %s", m[1], e[1], e[2])
			} else {
				p = fmt.Sprintf("s%s %s", m[1], m[2])
			}
		}
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// judge reports one case's differences. Unlisted differences fail. A
// deliberate entry and a "to fix" entry both hold the digest of the
// difference and fails when the row differs otherwise
// (a regression, or progress to record) or matches (remove the entry), so
// the list always says where the work stands.
func judge(t *testing.T, mode string, deliberate map[string]oracleDeliberate, toFix map[string]string, report *oracleMismatches, c oCase, diffs []string) {
	t.Helper()
	kept, isDeliberate := deliberate[c.Name]
	listed, isToFix := toFix[c.Name]
	switch {
	case len(diffs) > 0 && isDeliberate && kept.Digest == diffSummary(diffs):
		report.add(mode, c, diffs, "deliberate: "+kept.Why)
	case len(diffs) > 0 && isDeliberate:
		report.add(mode, c, diffs, "deliberate, but listed otherwise")
		t.Errorf("%s: differs from Mercure otherwise than the deliberate difference listed (%s): the list says %q, now %q:\n  %s", c.Name, kept.Why, kept.Digest, diffSummary(diffs), strings.Join(diffs, "\n  "))
	case len(diffs) > 0 && isToFix && listed == diffSummary(diffs):
		report.add(mode, c, diffs, "to fix")
	case len(diffs) > 0 && isToFix:
		report.add(mode, c, diffs, "to fix, but listed otherwise")
		t.Errorf("%s: differs from Mercure otherwise than listed: the list says %q, now %q:\n  %s", c.Name, listed, diffSummary(diffs), strings.Join(diffs, "\n  "))
	case len(diffs) > 0:
		report.add(mode, c, diffs, "")
		t.Errorf("%s: differs from Mercure (%s):\n  %s", c.Name, c.Why, strings.Join(diffs, "\n  "))
	case isDeliberate || isToFix:
		t.Errorf("%s: now answers as Mercure does: remove it from the known list", c.Name)
	}
}

func transcriptPath(version, name string) string {
	return filepath.Join(oracleDir, version, strings.ReplaceAll(name, "/", "__")+".json")
}

func readTranscript(t *testing.T, version, name string) *oTranscript {
	t.Helper()
	b, err := os.ReadFile(transcriptPath(version, name))
	if err != nil {
		t.Errorf("%s: no transcript (re-record: bash oracle/record.sh): %v", name, err)
		return nil
	}
	var tr oTranscript
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("%s: %v", transcriptPath(version, name), err)
	}
	return &tr
}

// stepsFingerprint is the case's requests as the table has them; a
// transcript recorded from other requests is stale.
func stepsFingerprint(steps []oStep) string {
	b, _ := json.Marshal(steps)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// TestMercureOracleRecord records Mercure's answers to the table as golden
// transcripts. It runs only when asked (oracle/record.sh sets
// MERCURE_ORACLE_RECORD to 1.0 or 0.24.2).
func TestMercureOracleRecord(t *testing.T) {
	version := os.Getenv("MERCURE_ORACLE_RECORD")
	if version == "" {
		t.Skip("records transcripts only when asked: bash oracle/record.sh")
	}
	bin := oracleBinary(t, version)
	commit := oracleCommit(bin)
	cases, hubs, tokens := oracleModernCases(), oracleModernHubs, oracleModernTokens
	if version != "1.0" {
		cases, hubs, tokens = oracleCompatCases(), oracleCompatHubs, oracleCompatTokens
	}
	dir := filepath.Join(oracleDir, version)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	runTable(t, cases, hubs, func(t *testing.T, cfg oracleHubConfig) *oracleHub {
		return startOracleHub(t, bin, cfg, tokens)
	}, func(t *testing.T, h *oracleHub, c oCase) {
		var tr oTranscript
		tr.Mercure.Version, tr.Mercure.Commit = version, commit
		tr.Case, tr.Hub, tr.Why, tr.Steps = c.Name, c.Hub, c.Why, c.Steps
		tr.Answers = h.run(t, c)
		b, err := json.MarshalIndent(tr, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(transcriptPath(version, c.Name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	meta := fmt.Sprintf("{\n  \"version\": %q,\n  \"commit\": %q,\n  \"cases\": %d\n}\n", version, commit, len(cases))
	if err := os.WriteFile(filepath.Join(dir, "ORIGIN.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMercureOracleModern replays Mercure 1.0's recorded answers against
// sse_mercure in modern mode.
func TestMercureOracleModern(t *testing.T) {
	t.Parallel()
	if os.Getenv("MERCURE_ORACLE_RECORD") != "" {
		t.Skip("recording")
	}
	report := &oracleMismatches{}
	defer report.write(t, "modern mode against Mercure 1.0 (recorded)")
	runTable(t, oracleModernCases(), oracleModernHubs, func(t *testing.T, cfg oracleHubConfig) *oracleHub {
		return startOracleHub(t, "", cfg, oracleModernTokens)
	}, func(t *testing.T, h *oracleHub, c oCase) {
		tr := readTranscript(t, "1.0", c.Name)
		if tr == nil {
			return
		}
		if stepsFingerprint(tr.Steps) != stepsFingerprint(c.Steps) || tr.Hub != c.Hub {
			t.Errorf("%s: the transcript was recorded from other requests: re-record (bash oracle/record.sh 1.0)", c.Name)
			return
		}
		judge(t, "modern", oracleDeliberateModern, oracleToFixModern, report, c, diffAnswers(c, h.run(t, c), compactIDs(tr.Answers)))
	})
}

// TestMercureOracleCompat runs the 0.x table live against Mercure 0.24.2
// and sse_mercure in protocol_version_compatibility 8.
func TestMercureOracleCompat(t *testing.T) {
	t.Parallel()
	if os.Getenv("MERCURE_ORACLE_RECORD") != "" {
		t.Skip("recording")
	}
	bin := oracleBinary(t, "0.24.2")
	report := &oracleMismatches{}
	defer report.write(t, "compatibility mode against Mercure 0.24.2 (live)")
	type pair struct{ ours, theirs *oracleHub }
	pairs := map[string]*pair{}
	runTable(t, oracleCompatCases(), oracleCompatHubs, func(t *testing.T, cfg oracleHubConfig) *oracleHub {
		// Both hubs start here; the "hub" returned is ours, and theirs is
		// kept beside it.
		ours := startOracleHub(t, "", cfg, oracleCompatTokens)
		pairs[ours.base] = &pair{ours: ours, theirs: startOracleHub(t, bin, cfg, oracleCompatTokens)}
		return ours
	}, func(t *testing.T, h *oracleHub, c oCase) {
		p := pairs[h.base]
		theirs := p.theirs.run(t, c)
		judge(t, "compat", oracleDeliberateCompat, oracleToFixCompat, report, c, diffAnswers(c, h.run(t, c), theirs))
	})
}
