package integration

import (
	"context"
	cryptoRand "crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
)

// TestMercureConformanceModern is a page of the hub's origin doing what
// Mercure's conformance suite checks, on a modern-mode hub (1.0 tokens,
// `match` and `match_urlpattern` selectors), so that CI checks modern mode
// from a browser too (the 1.0 suite itself is not on the Go module proxy;
// conformance/run.sh runs it where a copy is at hand).
//
// Anonymous EventSources, one per selector set, and a publisher (fetch
// with a 1.0 access token) in one page:
//   - an update reaches exactly the streams one of whose selectors matches
//     a topic of it: exact on a plain string and on a URI, one of several
//     selectors, a URL pattern with a named group; never a stream whose
//     selectors match none of its topics;
//   - a private update reaches no anonymous stream;
//   - the hub answers each publish 200, text/plain, with the update's own
//     id, and the stream gets that id and the data, line breaks included;
//   - an id may be reused (the private updates reuse the public ones').
//
// "Not received" is proved, not waited for: every stream also selects one
// marker topic, and the marker is published last. A stream delivers in
// publish order, so once each stream has the marker it has everything it
// will ever get of the updates before it, and must have exactly its share.
func TestMercureConformanceModern(t *testing.T) {
	site := `http://127.0.0.1:{PORT} {
	respond /page "<!doctype html><title>conformance</title>" 200
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		issuer https://issuer.example
		audience http://127.0.0.1:{PORT}/.well-known/mercure
		anonymous
	}
}
`
	c := startCaddy(t, site)
	pub := mercureToken(t, mercurePubKey, true, jwt.MapClaims{
		"iss": "https://issuer.example",
		"aud": c.base + "/.well-known/mercure",
		"authorization_details": []any{map[string]any{
			"type": mercureDetailType, "actions": []string{"publish"},
			"topics": []any{map[string]any{"match": "*"}},
		}},
	})

	run := fmt.Sprintf("%x", randomBytes(t, 6))
	base := "https://example.net/" + run
	marker := base + "/marker"
	streams := []struct {
		name   string
		params [][2]string // query parameters, besides the marker's
	}{
		{"exact string", [][2]string{{"match", "plain-" + run}}},
		{"exact URI", [][2]string{{"match", base + "/books/1"}}},
		{"one of several", [][2]string{{"match", "unrelated-" + run}, {"match", base + "/books/2"}}},
		{"URL pattern", [][2]string{{"match_urlpattern", base + "/authors/:id"}}},
		// Selectors of each kind that none of the updates matches. One
		// stream for the three: over HTTP/1.1 a page has six connections
		// to the hub, and its publishes need one.
		{"others", [][2]string{{"match", "another-" + run}, {"match", base + "/books/another"},
			{"match_urlpattern", base + "/shelves/:id"}}},
	}
	type update struct {
		topics  []string
		private bool
		to      []string // the streams that must get it
		id      string
	}
	updates := []update{
		{topics: []string{"plain-" + run}, to: []string{"exact string"}},
		{topics: []string{base + "/books/1"}, to: []string{"exact URI"}},
		{topics: []string{"elsewhere-" + run, base + "/books/2"}, to: []string{"one of several"}},
		{topics: []string{base + "/authors/7"}, to: []string{"URL pattern"}},
		{topics: []string{"will-not-match-" + run}},
		{topics: []string{base + "/books/will-not-match"}},
		{topics: []string{base + "/shelf/7"}},
	}
	for i := range updates {
		updates[i].id = fmt.Sprintf("urn:%s:%d", run, i)
	}
	// The private twins of the first four, reusing their ids: for no one.
	for _, u := range updates[:4] {
		updates = append(updates, update{topics: u.topics, private: true, id: u.id})
	}

	p := newTab(t, newBrowser(t))
	p.do("load the page", chromedp.Navigate(c.base+"/page"))
	eval[bool](p, fmt.Sprintf(`(() => {
		window.conf = { got: {}, es: {} };
		window.openStream = (name, params) => {
			const u = new URL('/.well-known/mercure', location.origin);
			for (const [k, v] of params) u.searchParams.append(k, v);
			const es = new EventSource(u);
			conf.es[name] = es;
			conf.got[name] = [];
			es.onmessage = (e) => conf.got[name].push({ type: e.type, id: e.lastEventId, data: e.data });
			return true;
		};
		window.publish = async (fields) => {
			const r = await fetch('/.well-known/mercure', {
				method: 'POST',
				headers: { Authorization: 'Bearer ' + %q },
				body: new URLSearchParams(fields),
			});
			return { status: r.status, contentType: r.headers.get('Content-Type') || '', body: await r.text() };
		};
		return true;
	})()`, pub))

	for _, s := range streams {
		params := append(append([][2]string{}, s.params...), [2]string{"match", marker})
		b, _ := json.Marshal(params)
		eval[bool](p, fmt.Sprintf(`openStream(%q, %s)`, s.name, b))
	}
	for _, s := range streams {
		p.waitJS(s.name+" opens", fmt.Sprintf(`conf.es[%q].readyState === EventSource.OPEN`, s.name))
	}

	type got struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data string `json:"data"`
	}
	want := map[string][]got{}
	for _, s := range streams {
		want[s.name] = []got{}
	}
	publish := func(what, id, data string, topics []string, private bool) {
		t.Helper()
		fields := [][2]string{{"id", id}, {"data", data}}
		for _, topic := range topics {
			fields = append(fields, [2]string{"topic", topic})
		}
		if private {
			fields = append(fields, [2]string{"private", "on"})
		}
		b, _ := json.Marshal(fields)
		r := evalAwait[struct {
			Status      int    `json:"status"`
			ContentType string `json:"contentType"`
			Body        string `json:"body"`
		}](p, fmt.Sprintf(`publish(%s)`, b))
		if r.Status != 200 || !textPlain.MatchString(r.ContentType) || r.Body != id {
			t.Fatalf("%s: the hub answered %d %q %q, want 200, text/plain and the update's id %q",
				what, r.Status, r.ContentType, r.Body, id)
		}
	}
	for i, u := range updates {
		data := fmt.Sprintf("update %d\n\nto %v", i, u.topics)
		publish(fmt.Sprintf("update %d (private %v) to %v", i, u.private, u.topics), u.id, data, u.topics, u.private)
		for _, name := range u.to {
			want[name] = append(want[name], got{"message", u.id, data})
		}
	}
	publish("the marker", "urn:"+run+":marker", "marker", []string{marker}, false)
	for _, s := range streams {
		want[s.name] = append(want[s.name], got{"message", "urn:" + run + ":marker", "marker"})
	}

	p.waitJS("every stream gets the marker", `Object.values(conf.got).every((g) => g.some((e) => e.data === 'marker'))`)
	have := evalAwait[map[string][]got](p, `Promise.resolve(conf.got)`)
	for _, s := range streams {
		if !reflect.DeepEqual(have[s.name], want[s.name]) {
			h, _ := json.Marshal(have[s.name])
			w, _ := json.Marshal(want[s.name])
			t.Errorf("stream %q %v received\n\t%s\nwant exactly\n\t%s", s.name, s.params, h, w)
		}
	}
}

// textPlain is the Content-Type of a publish's answer.
var textPlain = regexp.MustCompile(`^text/plain(?:$|;)`)

// evalAwait evaluates a JavaScript expression whose value is a promise and
// decodes what it resolves to.
func evalAwait[T any](p *tab, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// randomBytes returns n random bytes, so that a run's topics are its own.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := cryptoRand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
