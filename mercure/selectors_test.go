package mercure

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

const testHubURL = "https://hub.example.com/.well-known/mercure"

type selectorCase struct {
	topic string
	want  bool
}

func checkSelector(t *testing.T, s *MercureSelectors, sel MercureSelector, cases []selectorCase) {
	t.Helper()
	m, err := s.Compile(sel, testHubURL)
	if err != nil {
		t.Fatalf("Compile(%s %q): %v", sel.Type, sel.Value, err)
	}
	for _, c := range cases {
		if got := m.Match(c.topic); got != c.want {
			t.Errorf("%s selector %q, topic %q: Match = %v, want %v", sel.Type, sel.Value, c.topic, got, c.want)
		}
	}
}

// The 0.x spec, section "Topic Selectors": `*` matches every string; a
// string matches a selector that is exactly the same; a string matches a
// valid URI template it matches; nothing else matches.
func TestMercureTopicSelectorSpecSteps(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	topic := func(v string) MercureSelector { return MercureSelector{MercureTopicSelector, v} }

	// Step 1: the reserved string `*`.
	checkSelector(t, s, topic("*"), []selectorCase{
		{"https://example.com/foo", true}, {"bar", true}, {"*", true}, {"{x}", true},
	})
	// The 0.x "Subscription" example: topic=https://example.com/foo,
	// topic=bar, topic=https://example.com/bar/{id}.
	checkSelector(t, s, topic("https://example.com/foo"), []selectorCase{
		{"https://example.com/foo", true}, {"https://example.com/foo/", false},
		{"https://example.com/Foo", false}, {"https://example.com/foo?x", false},
	})
	checkSelector(t, s, topic("bar"), []selectorCase{{"bar", true}, {"bars", false}, {"ba", false}})
	checkSelector(t, s, topic("https://example.com/bar/{id}"), []selectorCase{
		{"https://example.com/bar/1", true},
		{"https://example.com/bar/abc-1.2~_", true},
		{"https://example.com/bar/a%2Fb", true}, // pct-encoded is allowed in a simple expansion
		{"https://example.com/bar/1/2", false},  // `/` is reserved: a simple {id} stops there
		{"https://example.com/baz/1", false},
		{"http://example.com/bar/1", false},
		// Step 2: a selector matches itself, so a template can be
		// compared with another one (authorization of selectors).
		{"https://example.com/bar/{id}", true},
	})
	// The 0.x "Subscribers" example: the token's selector
	// https://example.com/users/foo/{?topic} and the alternate topic of the
	// private update.
	checkSelector(t, s, topic("https://example.com/users/foo/{?topic}"), []selectorCase{
		{"https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", true},
		{"https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fa-random-topic", true},
		{"https://example.com/users/foo/", true},
		{"https://example.com/users/bar/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", false},
		{"https://example.com/books/1", false},
	})
}

func TestMercureTopicSelectorTemplates(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	topic := func(v string) MercureSelector { return MercureSelector{MercureTopicSelector, v} }

	// Several variables, and a query expansion with two of them.
	checkSelector(t, s, topic("https://example.com/{lang}/books/{id}{?page,sort}"), []selectorCase{
		{"https://example.com/fr/books/1", true},
		{"https://example.com/fr/books/1?page=2", true},
		{"https://example.com/fr/books/1?page=2&sort=asc", true},
		{"https://example.com/fr/books/1/reviews", false},
		{"https://example.com/fr/films/1", false},
	})
	// Reserved expansion lets a variable span slashes.
	checkSelector(t, s, topic("https://example.com/files/{+path}"), []selectorCase{
		{"https://example.com/files/a/b/c.txt", true},
		{"https://example.com/other/a", false},
	})
	// Path-segment expansion with explode.
	checkSelector(t, s, topic("https://example.com{/segments*}"), []selectorCase{
		{"https://example.com/a/b", true},
		{"https://example.com", true},
		{"https://example.org/a", false},
	})
	// Regexp metacharacters in the literal parts are literal.
	checkSelector(t, s, topic("https://example.com/a.b/{id}"), []selectorCase{
		{"https://example.com/a.b/1", true},
		{"https://example.com/aXb/1", false},
	})
}

// In 0.x any string is a selector: one that is not a valid URI template
// (braces that open no expression, characters a template refuses) selects
// exactly itself. In 1.0 Exact, braces mean nothing at all.
func TestMercureSelectorBracesAreLiteralWhenNoTemplate(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	for _, v := range []string{"foo{bar", "a}b", "{}", "{", "}", "room {1}", "https://example.com/{id"} {
		checkSelector(t, s, MercureSelector{MercureTopicSelector, v}, []selectorCase{
			{v, true}, {v + "x", false}, {strings.Trim(v, "{}"), v == strings.Trim(v, "{}")},
		})
	}
	// A 1.0 Exact matcher that looks like a template is compared bytes for
	// bytes (draft-08 "Exact Matching").
	checkSelector(t, s, MercureSelector{MercureExact, "https://example.com/books/{id}"}, []selectorCase{
		{"https://example.com/books/{id}", true},
		{"https://example.com/books/1", false},
	})
}

// draft-08 "Exact Matching": case-sensitive, byte for byte, no
// normalization, no resolution of relative values; `*` is reserved in
// every matcher type ("Matcher Types").
func TestMercureExactMatcher(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	checkSelector(t, s, MercureSelector{MercureExact, "https://example.com/foo"}, []selectorCase{
		{"https://example.com/foo", true},
		{"https://EXAMPLE.com/foo", false},
		{"https://example.com/%66oo", false},
		{"https://example.com/foo/", false},
	})
	checkSelector(t, s, MercureSelector{MercureExact, "/books/1"}, []selectorCase{
		{"/books/1", true},
		{"https://hub.example.com/books/1", false}, // never resolved against the hub
	})
	checkSelector(t, s, MercureSelector{MercureExact, "caf\u00e9"}, []selectorCase{
		{"caf\u00e9", true},
		{"cafe\u0301", false}, // no Unicode normalization
	})
	for _, typ := range []MercureMatcherType{MercureExact, MercureURLPattern, MercureTopicSelector} {
		checkSelector(t, s, MercureSelector{typ, "*"}, []selectorCase{
			{"https://example.com/anything", true}, {"urn:x", true}, {"relative", true},
		})
	}
}

// draft-08 "URL Pattern" and its examples.
func TestMercureURLPatternMatcher(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	pat := func(v string) MercureSelector { return MercureSelector{MercureURLPattern, v} }

	// "Subscription" example: matchURLPattern=https://example.com/bar/:id.
	checkSelector(t, s, pat("https://example.com/bar/:id"), []selectorCase{
		{"https://example.com/bar/1", true},
		{"https://example.com/bar/foo", true},
		{"https://example.com/bar/1/2", false},
		{"https://example.com/baz/1", false},
		{"https://example.com/BAR/1", false}, // paths are case-sensitive
		{"https://EXAMPLE.com/bar/1", true},  // hosts are not (URL canonicalization)
		{"bar", false},
		{"urn:uuid:1", false},
	})
	// "Subscribers" example: matchURLPattern=https://example.com/books/:id.
	checkSelector(t, s, pat("https://example.com/books/:id"), []selectorCase{
		{"https://example.com/books/1", true},
		{"https://example.com/books/2", true},
		{"https://example.com/books", false},
	})
	// Relative patterns and relative topics are resolved against the hub's
	// URL: the draft's pattern for subscription events.
	checkSelector(t, s, pat("/.well-known/mercure/subscriptions/Exact/:topic/:subscriber"), []selectorCase{
		{"/.well-known/mercure/subscriptions/Exact/https%3A%2F%2Fexample.com%2Fa-topic/urn%3Auuid%3A1", true},
		{"https://hub.example.com/.well-known/mercure/subscriptions/Exact/a/b", true},
		{"https://other.example.com/.well-known/mercure/subscriptions/Exact/a/b", false},
		{"/.well-known/mercure/subscriptions/URLPattern/a/b", false},
	})
	// Wildcards and regexp groups (Go's linear-time regexp syntax).
	checkSelector(t, s, pat("https://example.com/books/*"), []selectorCase{
		{"https://example.com/books/1", true},
		{"https://example.com/books/1/reviews/2", true},
		{"https://example.com/films/1", false},
	})
	checkSelector(t, s, pat(`https://example.com/books/:id(\d+)`), []selectorCase{
		{"https://example.com/books/12", true},
		{"https://example.com/books/ab", false},
	})
}

func TestMercureSelectorErrors(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{MaxLength: 100})
	cases := []struct {
		sel  MercureSelector
		base string
		want string
	}{
		{MercureSelector{MercureExact, ""}, testHubURL, "is empty"},
		{MercureSelector{MercureTopicSelector, strings.Repeat("a", 101)}, testHubURL, "is 101 bytes; at most 100 are allowed"},
		{MercureSelector{MercureExact, "a\nb"}, testHubURL, "control character"},
		{MercureSelector{MercureExact, "a\x00b"}, testHubURL, "control character"},
		{MercureSelector{MercureTopicSelector, "a\x7fb"}, testHubURL, "control character"},
		{MercureSelector{MercureURLPattern, "a\u0085b"}, testHubURL, "control character"},
		{MercureSelector{MercureExact, "a\u200bb"}, testHubURL, "format character U+200B"},       // zero-width space
		{MercureSelector{MercureExact, "a\u202eb"}, testHubURL, "format character U+202E"},       // right-to-left override
		{MercureSelector{MercureTopicSelector, "\u00ad"}, testHubURL, "format character U+00AD"}, // soft hyphen
		{MercureSelector{MercureURLPattern, "/x\ufeff"}, testHubURL, "format character U+FEFF"},
		{MercureSelector{MercureExact, "a\U000e0001"}, testHubURL, "format character U+E0001"},
		{MercureSelector{MercureExact, "a\xffb"}, testHubURL, "not valid UTF-8"},
		{MercureSelector{MercureURLPattern, "https://example.com/("}, testHubURL, "not a valid URL pattern"},
		{MercureSelector{MercureURLPattern, "https://example.com/:id((?=a)a)"}, testHubURL, "not a valid URL pattern"},
		{MercureSelector{MercureURLPattern, "https://example.com/:a/:a"}, testHubURL, "not a valid URL pattern"},
		{MercureSelector{MercureURLPattern, "/relative/:id"}, "", "the hub's URL is unknown"},
		{MercureSelector{MercureMatcherType(9), "x"}, testHubURL, "unknown matcher type"},
	}
	for _, c := range cases {
		_, err := s.Compile(c.sel, c.base)
		var se *MercureSelectorError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%s %q) = %v, want a *MercureSelectorError", c.sel.Type, c.sel.Value, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%s %q) error %q, want it to say %q", c.sel.Type, c.sel.Value, err, c.want)
		}
		if strings.Contains(err.Error(), "0x") || len(err.Error()) > 300 {
			t.Errorf("error %q leaks internals or is too long", err)
		}
	}

	// Too many selectors in one list.
	many := make([]MercureSelector, DefaultMercureMaxSelectors+1)
	for i := range many {
		many[i] = MercureSelector{MercureExact, fmt.Sprintf("t%d", i)}
	}
	if _, err := s.CompileAll(many, testHubURL); err == nil || !strings.Contains(err.Error(), "at most 100") {
		t.Errorf("CompileAll(101 selectors) = %v, want the count refused", err)
	}
	if ms, err := s.CompileAll(many[:DefaultMercureMaxSelectors], testHubURL); err != nil || len(ms) != DefaultMercureMaxSelectors {
		t.Errorf("CompileAll(100 selectors) = %d, %v", len(ms), err)
	}
	// One bad selector fails the list, naming it.
	_, err := s.CompileAll([]MercureSelector{{MercureExact, "ok"}, {MercureURLPattern, "https://x/("}}, testHubURL)
	if err == nil || !strings.Contains(err.Error(), `"https://x/("`) {
		t.Errorf("CompileAll with a bad pattern = %v", err)
	}
}

// A template whose regexp Go refuses (over 1,000 variables in one
// expression exceed the repeat limit; the library panics) is no usable
// template: per the 0.x rules it selects exactly itself, and the server
// does not crash. The default length and cost caps keep such templates out
// anyway.
func TestMercureSelectorPathologicalTemplate(t *testing.T) {
	vars := make([]string, 1100)
	for i := range vars {
		vars[i] = fmt.Sprintf("v%d", i)
	}
	tmpl := "https://example.com/{" + strings.Join(vars, ",") + "}"

	s := NewMercureSelectors(MercureSelectorConfig{MaxLength: 1 << 16, MaxPatternCost: 1 << 20})
	checkSelector(t, s, MercureSelector{MercureTopicSelector, tmpl}, []selectorCase{
		{tmpl, true}, {"https://example.com/1", false},
	})
	if _, err := NewMercureSelectors(MercureSelectorConfig{}).Compile(MercureSelector{MercureTopicSelector, tmpl}, ""); err == nil {
		t.Errorf("a %d-byte template passed the default length cap", len(tmpl))
	}
}

// The parameter names of both modes (the spec's Subscription section;
// compatibility mode adds 0.x's topic).
func TestMercureSubscribeParam(t *testing.T) {
	const bad = MercureMatcherType(255) // a refused name
	cases := []struct {
		name           string
		modern, compat MercureMatcherType // 0: not a matcher
	}{
		{"match", MercureExact, MercureExact},
		{"match_exact", MercureExact, MercureExact},
		{"match_urlpattern", MercureURLPattern, MercureURLPattern},
		{"topic", bad, MercureTopicSelector},
		// The reserved `match` namespace: anything else in it is a 400,
		// whatever its case, in both modes; the names are case-sensitive.
		{"Match", bad, bad},
		{"MATCH", bad, bad},
		{"matchExact", bad, bad},
		{"matchURLPattern", bad, bad},
		{"match_URLPattern", bad, bad},
		{"Match_urlpattern", bad, bad},
		{"matchurlpattern", bad, bad},
		{"match_foo", bad, bad},
		{"matchRegexp", bad, bad},
		{"MATCHES", bad, bad},
		{"match_uri_template", bad, bad},
		{"match ", bad, bad},
		// Not matchers at all.
		{"Topic", 0, 0},
		{"topics", 0, 0},
		{"last_event_id", 0, 0},
		{"lastEventID", 0, 0},
		{"Last-Event-ID", 0, 0},
		{"access_token", 0, 0},
		{"authorization", 0, 0},
		{"mat", 0, 0},
		{"xmatch", 0, 0},
	}
	for _, c := range cases {
		for _, mode := range []struct {
			compat bool
			want   MercureMatcherType
		}{{false, c.modern}, {true, c.compat}} {
			typ, ok, err := MercureSubscribeParam(c.name, mode.compat)
			switch {
			case mode.want == bad:
				if err == nil || ok {
					t.Errorf("compat=%v: %q accepted (%v, %v), want an error", mode.compat, c.name, typ, ok)
				}
			case mode.want == 0:
				if err != nil || ok {
					t.Errorf("compat=%v: %q = %v, %v, %v; want no matcher and no error", mode.compat, c.name, typ, ok, err)
				}
			default:
				if err != nil || !ok || typ != mode.want {
					t.Errorf("compat=%v: %q = %v, %v, %v; want %v", mode.compat, c.name, typ, ok, err, mode.want)
				}
			}
		}
	}
}

func TestMercureParseMatchType(t *testing.T) {
	for in, want := range map[string]MercureMatcherType{"": MercureExact, "Exact": MercureExact, "URLPattern": MercureURLPattern} {
		if got, err := ParseMercureMatchType(in); err != nil || got != want {
			t.Errorf("ParseMercureMatchType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"exact", "urlpattern", "URLPATTERN", "Regexp", "UriTemplate"} {
		if _, err := ParseMercureMatchType(in); err == nil {
			t.Errorf("ParseMercureMatchType(%q) accepted a matchType the draft does not define", in)
		}
	}
	if MercureExact.String() != "Exact" || MercureURLPattern.String() != "URLPattern" {
		t.Errorf("canonical names: %q, %q", MercureExact, MercureURLPattern)
	}
}

// One compilation per distinct selector, however many subscribers use it
// and however many arrive at once; the cache stays within its capacity.
func TestMercureSelectorCompileCache(t *testing.T) {
	// Each template's estimated size is under 2KiB: 100 of them fit.
	s := NewMercureSelectors(MercureSelectorConfig{CacheBytes: 100 << 10})
	sel := MercureSelector{MercureTopicSelector, "https://example.com/books/{id}"}

	var wg sync.WaitGroup
	results := make([]*MercureMatcher, 10000)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(results); i += 8 {
				m, err := s.Compile(sel, testHubURL)
				if err != nil {
					t.Error(err)
					return
				}
				results[i] = m
			}
		}(g)
	}
	wg.Wait()
	if n := s.compiles.Load(); n != 1 {
		t.Errorf("10,000 subscribers with one selector compiled it %d times, want 1", n)
	}
	for _, m := range results {
		if m != results[0] {
			t.Fatal("subscribers with the same selector got different matchers")
		}
	}

	// The host of a request does not split the cache for types that do not
	// read it; it does for URL patterns, which resolve against it.
	a, _ := s.Compile(sel, "https://a.example/.well-known/mercure")
	b, _ := s.Compile(sel, "https://b.example/.well-known/mercure")
	if a != b {
		t.Error("a URI template was compiled once per hub URL")
	}
	p := MercureSelector{MercureURLPattern, "/books/:id"}
	pa, _ := s.Compile(p, "https://a.example/.well-known/mercure")
	pb, _ := s.Compile(p, "https://b.example/.well-known/mercure")
	if pa == pb || !pa.Match("https://a.example/books/1") || pb.Match("https://a.example/books/1") {
		t.Error("a relative URL pattern was not resolved against each hub URL")
	}

	// A flood of distinct selectors: bounded.
	for i := 0; i < 5000; i++ {
		if _, err := s.Compile(MercureSelector{MercureTopicSelector, fmt.Sprintf("https://example.com/%d/{id}", i)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.compiled.len(); n > 100 || n < 10 {
		t.Errorf("compiled cache holds %d selectors, want 10 to 100", n)
	}
	if b := s.compiled.size(); b > 100<<10 {
		t.Errorf("compiled cache holds an estimated %d bytes, capacity %d", b, 100<<10)
	}
	// An evicted selector compiles again and still works.
	m, err := s.Compile(MercureSelector{MercureTopicSelector, "https://example.com/0/{id}"}, "")
	if err != nil || !m.Match("https://example.com/0/7") {
		t.Errorf("recompiled selector: %v", err)
	}
}

// A topic past the URL pattern evaluation cost limit matches no URL
// pattern (the spec's required bound): its parse would be quadratic in
// its segments. Under the limit it matches as usual; exact still works.
func TestMercurePatternCostLimitOnTopics(t *testing.T) {
	sels := NewMercureSelectors(MercureSelectorConfig{})
	pat, err := sels.Compile(MercureSelector{MercureURLPattern, "https://example.com/*"}, "https://example.com/.well-known/mercure")
	if err != nil {
		t.Fatal(err)
	}
	ok := "https://example.com/" + strings.Repeat("a/", mercurePatternMaxSegments-3) + "b"
	if !pat.Match(ok) {
		t.Errorf("a topic of %d segments does not match https://example.com/*", mercurePatternMaxSegments-2)
	}
	deep := "https://example.com/" + strings.Repeat("a/", 60_000)
	if pat.Match(deep) {
		t.Error("a topic of 60,000 segments was evaluated and matched; want it past the cost limit")
	}
	long := "https://example.com/" + strings.Repeat("a", mercurePatternMaxTopic)
	if pat.Match(long) {
		t.Error("a topic over the byte limit was evaluated")
	}
	deepShort := strings.Repeat("/", mercurePatternMaxSegments+1)
	exact, err := sels.Compile(MercureSelector{MercureExact, deepShort}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !exact.Match(deepShort) {
		t.Error("exact matching of a deep topic is affected by the pattern limit")
	}
}
