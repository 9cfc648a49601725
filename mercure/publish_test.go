package mercure

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseMercureUpdate(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int // 0: accepted
		check  func(t *testing.T, up *mercureUpdate)
	}{
		{"all fields", "topic=https://example.com/a&topic=https://example.com/b&topic=https://example.com/a&data=hi%0Athere&private=on&id=urn:x:1&type=change&retry=2500", 0,
			func(t *testing.T, up *mercureUpdate) {
				if strings.Join(up.Topics, " ") != "https://example.com/a https://example.com/b" {
					t.Errorf("topics %q: want the canonical first, duplicates dropped", up.Topics)
				}
				if up.Data != "hi\nthere" || !up.Private || up.ID != "urn:x:1" || up.Type != "change" || up.Retry != 2500*time.Millisecond {
					t.Errorf("got %+v", up)
				}
			}},
		{"no data is an update", "topic=a", 0, func(t *testing.T, up *mercureUpdate) {
			if up.Data != "" || up.Private || up.ID != "" || up.Retry != 0 {
				t.Errorf("got %+v", up)
			}
		}},
		{"private without a value", "topic=a&private", 0, func(t *testing.T, up *mercureUpdate) {
			if !up.Private {
				t.Error("private not set by the bare field")
			}
		}},
		{"private with any value, even false", "topic=a&private=false", 0, func(t *testing.T, up *mercureUpdate) {
			if !up.Private {
				t.Error("the field's presence alone makes an update private")
			}
		}},
		{"empty id is no id", "topic=a&id=", 0, func(t *testing.T, up *mercureUpdate) {
			if up.ID != "" {
				t.Errorf("id %q", up.ID)
			}
		}},
		{"any topic string", "topic=" + url.QueryEscape("urn:isbn:0451450523 ünïcode {x}"), 0, nil},
		{"unknown fields ignored", "topic=a&foo=bar", 0, nil},
		{"a topic field given twice is one topic", "topic=a&topic=a&topic=b", 0, func(t *testing.T, up *mercureUpdate) {
			if strings.Join(up.Topics, " ") != "a b" {
				t.Errorf("topics %q", up.Topics)
			}
		}},
		{"data with line breaks and field names", "topic=a&data=" + url.QueryEscape("x\nid: forged\r\nevent: mercure\rretry: 1"), 0, func(t *testing.T, up *mercureUpdate) {
			if up.Data != "x\nid: forged\r\nevent: mercure\rretry: 1" {
				t.Errorf("data %q", up.Data)
			}
		}},
		{"data with a control or format character", "topic=a&data=%00%E2%80%8B", 0, nil},
		{"a long topic: no cap below the body's", "topic=" + strings.Repeat("x", 5000), 0, nil},
		{"a long id: no cap below the body's", "topic=a&id=" + strings.Repeat("i", 5000), 0, nil},
		{"a long type: no cap below the body's", "topic=a&type=" + strings.Repeat("t", 5000), 0, nil},
		{"type Mercure (case differs)", "topic=a&type=Mercure", 0, nil},
		{"id earliest, case differs", "topic=a&id=Earliest", 0, nil},
		{"topic starting with *", "topic=*x", 0, nil},
		{"retry with leading zeros", "topic=a&retry=0007", 0, func(t *testing.T, up *mercureUpdate) {
			if up.Retry != 7*time.Millisecond {
				t.Errorf("retry %v", up.Retry)
			}
		}},
		{"retry at its bound", "topic=a&retry=4294967295", 0, nil},

		{"no topic", "data=x", http.StatusBadRequest, nil},
		{"empty topic", "topic=", http.StatusBadRequest, nil},
		{"topic *", "topic=*", http.StatusBadRequest, nil},
		{"alternate topic *", "topic=a&topic=*", http.StatusBadRequest, nil},
		{"topic with NUL", "topic=a%00b", http.StatusBadRequest, nil},
		{"topic with LF", "topic=a%0Ab", http.StatusBadRequest, nil},
		{"topic with CR", "topic=a%0Db", http.StatusBadRequest, nil},
		{"topic with a control character", "topic=a%01b", http.StatusBadRequest, nil},
		{"topic with DEL", "topic=a%7Fb", http.StatusBadRequest, nil},
		{"topic with a C1 control character", "topic=a%C2%85b", http.StatusBadRequest, nil},
		{"topic with a zero-width space (Cf)", "topic=a%E2%80%8Bb", http.StatusBadRequest, nil},
		{"topic with a right-to-left override (Cf)", "topic=a%E2%80%AEb", http.StatusBadRequest, nil},
		{"topic with a BOM (Cf)", "topic=%EF%BB%BFa", http.StatusBadRequest, nil},
		{"topic with a soft hyphen (Cf)", "topic=a%C2%ADb", http.StatusBadRequest, nil},
		{"alternate topic with a Cf character", "topic=a&topic=b%E2%81%A0", http.StatusBadRequest, nil},
		{"topic not UTF-8", "topic=a%FFb", http.StatusBadRequest, nil},
		{"malformed form", "topic=%zz", http.StatusBadRequest, nil},
		{"data twice", "topic=a&data=1&data=2", http.StatusBadRequest, nil},
		{"data not UTF-8", "topic=a&data=%FF", http.StatusBadRequest, nil},
		{"id twice", "topic=a&id=1&id=2", http.StatusBadRequest, nil},
		{"id starting with #", "topic=a&id=%23x", http.StatusBadRequest, nil},
		{"id earliest", "topic=a&id=earliest", http.StatusBadRequest, nil},
		{"id with LF", "topic=a&id=a%0Ab", http.StatusBadRequest, nil},
		{"id with CR", "topic=a&id=a%0Db", http.StatusBadRequest, nil},
		{"id with NUL", "topic=a&id=a%00b", http.StatusBadRequest, nil},
		{"id with a tab", "topic=a&id=a%09b", http.StatusBadRequest, nil},
		{"id with DEL", "topic=a&id=a%7Fb", http.StatusBadRequest, nil},
		{"id with a C1 control character", "topic=a&id=a%C2%9Bb", http.StatusBadRequest, nil},
		{"id with a Cf character", "topic=a&id=a%E2%80%8Db", http.StatusBadRequest, nil},
		{"id not UTF-8", "topic=a&id=%FF", http.StatusBadRequest, nil},
		{"type twice", "topic=a&type=x&type=y", http.StatusBadRequest, nil},
		{"type mercure", "topic=a&type=mercure", http.StatusBadRequest, nil},
		{"type with LF", "topic=a&type=a%0Ab", http.StatusBadRequest, nil},
		{"type with CR", "topic=a&type=a%0Db", http.StatusBadRequest, nil},
		{"type with NUL", "topic=a&type=a%00b", http.StatusBadRequest, nil},
		{"type with DEL", "topic=a&type=a%7F", http.StatusBadRequest, nil},
		{"type with a C1 control character", "topic=a&type=%C2%80", http.StatusBadRequest, nil},
		{"type with a Cf character", "topic=a&type=a%E2%80%8E", http.StatusBadRequest, nil},
		{"type not UTF-8", "topic=a&type=%FF", http.StatusBadRequest, nil},
		{"retry not digits", "topic=a&retry=1s", http.StatusBadRequest, nil},
		{"retry negative", "topic=a&retry=-1", http.StatusBadRequest, nil},
		{"retry with a plus", "topic=a&retry=%2B5", http.StatusBadRequest, nil},
		{"retry with a space", "topic=a&retry=%205", http.StatusBadRequest, nil},
		{"retry with non-ASCII digits", "topic=a&retry=%D9%A3", http.StatusBadRequest, nil},
		{"retry empty", "topic=a&retry=", http.StatusBadRequest, nil},
		{"retry twice", "topic=a&retry=1&retry=2", http.StatusBadRequest, nil},

		{"more topic fields than max_topics", "topic=1&topic=2&topic=3&topic=4", http.StatusRequestEntityTooLarge, nil},
		{"more topic fields than max_topics, repeated", "topic=1&topic=1&topic=1&topic=1", http.StatusRequestEntityTooLarge, nil},
		{"retry beyond its bound", "topic=a&retry=4294967296", http.StatusRequestEntityTooLarge, nil},
		{"retry huge", "topic=a&retry=99999999999999999999", http.StatusRequestEntityTooLarge, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, refusal := parseMercureUpdate([]byte(tt.body), 3, 0)
			switch {
			case tt.status == 0 && refusal != nil:
				t.Fatalf("refused with %d: %s", refusal.Status, refusal.Msg)
			case tt.status != 0 && refusal == nil:
				t.Fatalf("accepted %+v, want %d", up, tt.status)
			case tt.status != 0 && refusal.Status != tt.status:
				t.Fatalf("status %d (%s), want %d", refusal.Status, refusal.Msg, tt.status)
			case tt.status == http.StatusBadRequest && refusal.Code != "":
				t.Errorf("code %q, want none (a malformed request, not a malformed token)", refusal.Code)
			}
			if tt.check != nil {
				tt.check(t, up)
			}
		})
	}
}

// TestParseMercureUpdateTopicLength: max_topic_length, when set, is a 413
// limit; 0 is none.
func TestParseMercureUpdateTopicLength(t *testing.T) {
	if _, r := parseMercureUpdate([]byte("topic="+strings.Repeat("x", 101)), 3, 100); r == nil || r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a topic over max_topic_length: %+v", r)
	}
	if _, r := parseMercureUpdate([]byte("topic="+strings.Repeat("x", 100)), 3, 100); r != nil {
		t.Fatalf("a topic at max_topic_length: %+v", r)
	}
	// The default allows Mercure's 1,000 topics.
	body := strings.Repeat("topic=t&", DefaultMercureMaxTopics-1) + "topic=u"
	if up, r := parseMercureUpdate([]byte(body), DefaultMercureMaxTopics, 0); r != nil || len(up.Topics) != 2 {
		t.Fatalf("%d topic fields: %+v", DefaultMercureMaxTopics, r)
	}
}

func TestMercureReservedTopic(t *testing.T) {
	engine, _ := url.Parse("https://example.com/.well-known/mercure")
	for topic, want := range map[string]bool{
		"https://example.com/books/1":  false,
		"urn:uuid:1":                   false,
		"urn:x:/.well-known/mercure/x": false, // an opaque path
		"/.well-known/mercure":         true,
		"":                             true, // the hub's URL itself
		"/.well-known/mercure/subscriptions/exact/a/b":              true,
		"https://other.example/.well-known/mercure/subscriptions/x": true, // any authority
		"http://example.com/.well-known/mercure/x":                  true, // any scheme
		"foo://example.com/.well-known/mercure/x":                   true,
		"//example.com/.well-known/mercure/x":                       true,
		"mercure/subscriptions/x":                                   true, // relative to the hub's URL
		"./mercure/x":                                               true,
		"/books/../.well-known/mercure/x":                           true,
		"/.well-known/mercure/../mercure/x":                         true,
		"/.well-known/./mercure/x":                                  true,
		"/.well-known/%2e%2E/.well-known/mercure/x":                 true,
		"/.well-known/%6Dercure/x":                                  true, // unreserved characters decoded
		"/.well-known/%6dercure":                                    true,
		"/%2Ewell-known/mercure/x":                                  true,
		"/.well-known/mercur%65/%73ubscriptions":                    true,
		`\.well-known\mercure\x`:                                    true, // backslashes are slashes for special schemes
		`https://example.com/.well-known\mercure/x`:                 true,
		`https:\\example.com\.well-known\mercure`:                   true,
		`foo://h/.well-known\mercure/x`:                             false, // but not for others
		" /.well-known/mercure/x":                                   true,  // the parser trims spaces
		"/.well-known/mercure?x=1":                                  true,
		"/.well-known/mercure#x":                                    true,
		"/.well-known/mercurey":                                     false,
		"/.well-known/Mercure/x":                                    false, // paths are case-sensitive
		"/.well-known/mercure%2Fx":                                  false, // "/" is reserved: not decoded
		"/.well-known//mercure/x":                                   false,
		"/x/.well-known/mercure":                                    false,
		"{not a url":                                                false,
		"https://bad host/.well-known/mercure/x":                    false, // cannot be parsed: names no hub path
		"http://[::1/.well-known/mercure":                           false,
	} {
		if got := mercureReservedTopic(topic, engine); got != want {
			t.Errorf("%q: reserved %v, want %v", topic, got, want)
		}
	}
	// The hub's own path, not a fixed one.
	other, _ := url.Parse("http://localhost:8080/hub")
	for topic, want := range map[string]bool{
		"/hub":                   true,
		"/hub/x":                 true,
		"\\hub\\x":               true,
		"/%68ub/x":               true,
		"/hubs":                  false,
		"/.well-known/mercure/x": false,
	} {
		if got := mercureReservedTopic(topic, other); got != want {
			t.Errorf("hub /hub, %q: reserved %v, want %v", topic, got, want)
		}
	}
	// A hub path outside ASCII: the parser percent-encodes it, and a
	// topic spelling it either way is in its namespace.
	intl, _ := url.Parse("https://example.com/%C3%A9v%C3%A9nements")
	for topic, want := range map[string]bool{
		"/événements/x":           true,
		"/%C3%A9v%C3%A9nements/x": true,
		"/%c3%a9v%c3%a9nements":   true,
		"/evenements/x":           false,
	} {
		if got := mercureReservedTopic(topic, intl); got != want {
			t.Errorf("hub /événements, %q: reserved %v, want %v", topic, got, want)
		}
	}
	// Every letter encoded still names the segment.
	if !mercureReservedTopic("/.well-known/%6D%65%72%63%75%72%65/x", engine) {
		t.Error("a fully encoded segment was not reserved")
	}
	// An odd Host still gives the path.
	odd := &url.URL{Scheme: "http", Host: "bad host", Path: "/.well-known/mercure"}
	if !mercureReservedTopic("/.well-known/mercure/x", odd) || !mercureReservedTopic(`\.well-known\mercure`, odd) {
		t.Error("a hub URL with an odd Host reserves nothing")
	}
}

// TestMercureReservedCost: the WHATWG parser's cost grows with path
// segments × length, so a topic that cannot be reserved is not parsed at
// all, and the parsing of those that might be has a budget per request
// (413 beyond it).
func TestMercureReservedCost(t *testing.T) {
	engine, _ := url.Parse("https://example.com/.well-known/mercure")
	mr := newMercureReserved(engine)
	// 1MiB of segments without the hub's last segment: not parsed (this
	// took minutes when parsed).
	if in, err := mr.check("https://example.com/" + strings.Repeat("a/", 1<<19)); in || err != nil {
		t.Fatalf("a long topic outside the namespace: %v %v", in, err)
	}
	if mr.budget != mercureReservedBudget {
		t.Fatalf("a topic that cannot be reserved spent %d of the budget", mercureReservedBudget-mr.budget)
	}
	// Naming it: parsed while the budget lasts, then refused.
	costly := "https://example.com/mercure/" + strings.Repeat("a/", 1<<15)
	if _, err := mr.check(costly); err != errMercureTopicTooCostly {
		t.Fatalf("a costly topic naming the segment: %v", err)
	}
	small := "/x/mercure/" + strings.Repeat("a/", 500)
	n := 0
	for {
		in, err := mr.check(small)
		if err == errMercureTopicTooCostly {
			break
		}
		if err != nil || in {
			t.Fatalf("topic %d: %v %v", n, in, err)
		}
		n++
		if n > mercureReservedBudget {
			t.Fatal("the budget never ran out")
		}
	}
	if n == 0 || n > mercureReservedBudget/len(small) {
		t.Fatalf("%d topics of %d bytes fit the budget", n, len(small))
	}
	// A hub path ending in "/" has no segment to look for: every topic is
	// parsed, within the budget.
	root, _ := url.Parse("https://example.com/")
	if _, err := newMercureReserved(root).check("https://example.com/" + strings.Repeat("a/", 1<<19)); err != errMercureTopicTooCostly {
		t.Fatalf("hub at /: %v", err)
	}
	if !mercureReservedTopic("//x", root) || mercureReservedTopic("/x", root) {
		t.Fatal("hub at /: the namespace is / and //…")
	}
}

func TestDecodeMercureMeta(t *testing.T) {
	m, _ := decodeMercureMeta(`{"t":["a","b"],"p":true}`).(*mercureMeta)
	if m == nil || len(m.Topics) != 2 || !m.Private {
		t.Fatalf("got %+v", m)
	}
	for _, bad := range []string{"", "{", `{"t":[]}`, `{"p":true}`, `[]`} {
		if m, _ := decodeMercureMeta(bad).(*mercureMeta); m != nil {
			t.Errorf("%q decoded to %+v: an event without valid metadata must reach no subscriber", bad, m)
		}
	}
}

// The hub URL's parse is shared by the requests to that hub (reservedFor):
// concurrent checks give each request the same answers as a fresh parse,
// with a budget of its own, and the shared URL is not changed by them
// (run with -race: the parser clones its base).
func TestMercureReservedSharedBase(t *testing.T) {
	m := &Handler{}
	engine, _ := url.Parse("https://example.com/.well-known/mercure")
	topics := map[string]bool{
		"/.well-known/mercure/subscriptions/x": true,
		"mercure/x":                            true, // relative: resolved against the hub URL's path
		`\.well-known\mercure\x`:               true,
		"/.well-known/%6Dercure/x":             true,
		"?q#f":                                 true, // the hub URL itself
		"https://example.com/books/1":          false,
		"books/mercure-of-the-day":             false,
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				mr := m.reservedFor(engine)
				if mr.budget != mercureReservedBudget {
					t.Errorf("a request started with %d of the budget", mr.budget)
					return
				}
				for topic, want := range topics {
					if in, err := mr.check(topic); in != want || err != nil {
						t.Errorf("%q: reserved %v (%v), want %v", topic, in, err, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if b := m.reservedBase.Load(); b == nil || b.base.Href(false) != "https://example.com/.well-known/mercure" {
		t.Errorf("the shared hub URL is %v after the checks", b)
	}
}
