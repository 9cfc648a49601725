package mercure

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Every parameter rule of a subscribe request, in both modes: the names
// (selectors.go decides them one by one, this reads a whole
// request), the union of query and QUERY body, and the resume point.
func TestParseMercureSubscribe(t *testing.T) {
	const modern, compat, both = 1, 2, 3
	tests := []struct {
		name      string
		modes     int
		query     string
		body      string // a QUERY's form body
		header    string // Last-Event-ID
		status    int    // 0: accepted
		selectors int
		resume    string
		earliest  bool
	}{
		{name: "1.0 matchers", modes: both, query: "match=a&match_exact=b&match_urlpattern=/books/:id", selectors: 3},
		{name: "repeated matchers", modes: both, query: "match=a&match=b&match=a", selectors: 3},
		{name: "other parameters ignored", modes: both, query: "match=a&access_token=x&foo=bar", selectors: 1},
		{name: "no matcher", modes: both, query: "foo=bar", status: 400},
		{name: "empty query", modes: both, query: "", status: 400},
		{name: "topic in modern mode", modes: modern, query: "topic=a", status: 400},
		{name: "topic with match in modern mode", modes: modern, query: "match=a&topic=b", status: 400},
		{name: "topic in compatibility mode", modes: compat, query: "topic=a&topic=https://example.com/{id}", selectors: 2},
		{name: "topic and match in compatibility mode", modes: compat, query: "topic=a&match=b", selectors: 2},
		{name: "draft matchURLPattern", modes: both, query: "match=a&matchURLPattern=/x", status: 400},
		{name: "draft matchExact", modes: both, query: "matchExact=a", status: 400},
		{name: "Match", modes: both, query: "Match=a", status: 400},
		{name: "match_foo", modes: both, query: "match=a&match_foo=x", status: 400},
		{name: "MATCH_URLPATTERN", modes: both, query: "MATCH_URLPATTERN=/x", status: 400},
		{name: "matcher name in the body", modes: both, body: "match=a&matchRegexp=x", status: 400},

		// Resume points.
		{name: "last_event_id", modes: both, query: "match=a&last_event_id=e2", selectors: 1, resume: "e2"},
		{name: "lastEventID in modern mode is ignored", modes: modern, query: "match=a&lastEventID=e1", selectors: 1},
		{name: "lastEventID in compatibility mode", modes: compat, query: "topic=a&lastEventID=e1", selectors: 1, resume: "e1"},
		{name: "last_event_id before lastEventID", modes: compat, query: "topic=a&lastEventID=e1&last_event_id=e2", selectors: 1, resume: "e2"},
		{name: "header before the query", modes: both, query: "match=a&last_event_id=e1", header: "h1", selectors: 1, resume: "h1"},
		{name: "earliest", modes: both, query: "match=a&last_event_id=earliest", selectors: 1, earliest: true},
		{name: "earliest in the header", modes: both, query: "match=a", header: "earliest", selectors: 1, earliest: true},
		{name: "last_event_id twice", modes: both, query: "match=a&last_event_id=1&last_event_id=2", status: 400},

		// QUERY: the union of query and body.
		{name: "matchers in the body", modes: both, body: "match=a&match_urlpattern=/b/:id", selectors: 2},
		{name: "matchers in both", modes: both, query: "match=a", body: "match=b&match=c", selectors: 3},
		{name: "last_event_id in the body", modes: both, body: "match=a&last_event_id=b1", selectors: 1, resume: "b1"},
		{name: "the query's last_event_id wins", modes: both, query: "last_event_id=q1", body: "match=a&last_event_id=b1", selectors: 1, resume: "q1"},
		{name: "the header wins over both", modes: both, query: "last_event_id=q1", body: "match=a&last_event_id=b1", header: "h1", selectors: 1, resume: "h1"},
		{name: "topic in the body, modern", modes: modern, body: "topic=a", status: 400},
		{name: "topic in the body, compatibility", modes: compat, body: "topic=a&lastEventID=c1", selectors: 1, resume: "c1"},
	}
	for _, tt := range tests {
		for _, mode := range []int{modern, compat} {
			if tt.modes&mode == 0 {
				continue
			}
			name := tt.name + map[int]string{modern: " (modern)", compat: " (compat)"}[mode]
			t.Run(name, func(t *testing.T) {
				q, err := url.ParseQuery(tt.query)
				if err != nil {
					t.Fatal(err)
				}
				var body url.Values
				if tt.body != "" {
					if body, err = url.ParseQuery(tt.body); err != nil {
						t.Fatal(err)
					}
				}
				h := http.Header{}
				if tt.header != "" {
					h.Set("Last-Event-ID", tt.header)
				}
				req, refusal := parseMercureSubscribe(q, body, h, mode == compat)
				if tt.status != 0 {
					if refusal == nil || refusal.Status != tt.status || refusal.Code != "" {
						t.Fatalf("got %+v %+v, want %d without a Bearer error code", req, refusal, tt.status)
					}
					return
				}
				if refusal != nil {
					t.Fatalf("refused: %s", refusal.Msg)
				}
				if len(req.Selectors) != tt.selectors || req.Resume != tt.resume || req.Earliest != tt.earliest {
					t.Errorf("got %+v", req)
				}
			})
		}
	}
}

// The modern-mode refusal of topic= tells a 0.x user what to do.
func TestParseMercureSubscribeTopicHint(t *testing.T) {
	_, refusal := parseMercureSubscribe(url.Values{"topic": {"a"}}, nil, http.Header{}, false)
	if refusal == nil || !strings.Contains(refusal.Msg, "match=") || !strings.Contains(refusal.Msg, "protocol_version_compatibility 8") {
		t.Fatalf("refusal %+v does not point to match= and compatibility mode", refusal)
	}
}

// Hole 7: a token's relative URL pattern resolved against the client's
// Host header, so a client choosing its Host chose what the pattern
// granted. With a resource identifier, the Host changes nothing.
func TestMercureRelativePatternIgnoresHost(t *testing.T) {
	m := &Handler{auth: &MercureAuth{resource: "https://hub.example.com/.well-known/mercure"}}
	tokenSels := NewMercureSelectors(MercureSelectorConfig{})
	grantPattern := []MercureSelector{{MercureURLPattern, "/books/:id"}}
	route := []MercureSelector{{MercureExact, "*"}}

	allowed := func(host string) map[string]bool {
		r := httptest.NewRequest(http.MethodGet, "https://"+host+"/.well-known/mercure?match=*", nil) // TLS: https base
		base := m.patternBaseURL(r)
		private, err := tokenSels.CompileAll(grantPattern, base)
		if err != nil {
			t.Fatal(err)
		}
		d := tokenSels.Decider(mustCompileAll(t, tokenSels, route...), private)
		out := map[string]bool{}
		for _, topic := range []string{"https://hub.example.com/books/1", "https://evil.example/books/1", "/books/2"} {
			out[topic] = d.Allows([]string{topic}, true)
		}
		return out
	}
	honest, forged := allowed("hub.example.com"), allowed("evil.example")
	for topic, ok := range honest {
		if forged[topic] != ok {
			t.Errorf("private %s: allowed=%v with the hub's Host, %v with Host evil.example", topic, ok, forged[topic])
		}
	}
	if !honest["https://hub.example.com/books/1"] || honest["https://evil.example/books/1"] || !honest["/books/2"] {
		t.Errorf("relative pattern not resolved against the resource identifier: %v", honest)
	}

	// Without a resource identifier the request's URL is the hub's URL.
	m.auth.resource = ""
	r := httptest.NewRequest(http.MethodGet, "http://a.example/.well-known/mercure", nil)
	if got := m.patternBaseURL(r); got != "http://a.example/.well-known/mercure" {
		t.Errorf("base without resource_identifier: %q", got)
	}
}

// A token may hold more patterns than a request: its budget grows with
// its selector limit; a request's never does.
func TestMercurePatternLimits(t *testing.T) {
	m := &Handler{}
	if got := NewMercureSelectors(m.patternLimits(MercureSelectorConfig{MaxSelectors: 256}, true)).Config().PatternBudget; got != 3*DefaultMercurePatternBudget {
		t.Errorf("token budget for 256 selectors: %d", got)
	}
	if got := NewMercureSelectors(m.patternLimits(MercureSelectorConfig{MaxSelectors: 1000}, false)).Config().PatternBudget; got != DefaultMercurePatternBudget {
		t.Errorf("request budget: %d", got)
	}
	m.PatternBudget = 100
	if got := NewMercureSelectors(m.patternLimits(MercureSelectorConfig{}, false)).Config().PatternBudget; got != 100 {
		t.Errorf("pattern_budget 100: %d", got)
	}
	for _, bad := range []*Handler{
		{MaxMatchers: -1}, {MaxMatcherLength: -1}, {MaxPatternCost: -1}, {PatternBudget: -1}, {PatternCacheSize: -1},
		{MaxMatcherLength: 2 << 20},
	} {
		if err := bad.validateMatcherLimits(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := (&Handler{MaxMatchers: 5}).validateMatcherLimits(); err != nil {
		t.Error(err)
	}
}
