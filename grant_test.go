package caddysse

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// grantRoute is an sse route declaring news, user/* and org/*, granting
// what {test.grant} holds.
func grantRoute(t *testing.T) *SSEHandler {
	t.Helper()
	h := &SSEHandler{Grant: "{test.grant}", MaxTopicsPerSubscriber: 3, logger: zap.NewNop(), table: hub.NewTopicTable()}
	for _, n := range []string{"news", "user/*", "org/*"} {
		d := hub.TopicDecl{Name: n, Ring: hub.DefaultRingConfig(), MaxTopics: hub.DefaultMaxTopics}
		if err := h.table.Add(d, "test"); err != nil {
			t.Fatal(err)
		}
		if d.IsLiteral() {
			h.literals = append(h.literals, n)
		} else {
			h.wildcards = append(h.wildcards, hub.PatternSegments(n))
		}
	}
	return h
}

// grantRequest is a subscribe request whose placeholder test.grant holds
// grant (unset when grant is "-").
func grantRequest(rawQuery, grant string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/events?"+rawQuery, nil)
	repl := caddy.NewReplacer()
	if grant != "-" {
		repl.Set("test.grant", grant)
	}
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

func TestResolveGranted(t *testing.T) {
	h := grantRoute(t)
	for _, tc := range []struct {
		name, query, grant string
		want               []string // topics served, when status is 0
		status             int
		msg                string // in the answer, when status is not 0
	}{
		{name: "one topic", grant: "user/42", want: []string{"user/42"}},
		{name: "several, commas", grant: "user/42,org/7", want: []string{"user/42", "org/7"}},
		{name: "several, header sent twice", grant: "user/42, org/7", want: []string{"user/42", "org/7"}},
		{name: "several, spaces", grant: " user/42  org/7 news ", want: []string{"user/42", "org/7", "news"}},
		{name: "duplicates count once", grant: "user/42,user/42,org/7,user/42", want: []string{"user/42", "org/7"}},
		{name: "literal topics are not served ungranted", grant: "user/42", query: "topic=news", status: 403, msg: `"news" is not granted`},
		{name: "?topic= picks among the granted", grant: "user/42,org/7", query: "topic=org/7", want: []string{"org/7"}},
		{name: "?topic= another user's topic", grant: "user/42", query: "topic=user/43", status: 403, msg: "not granted"},
		{name: "?topic= invalid", grant: "user/42", query: "topic=a%20b", status: 400},
		{name: "?topic= too many", grant: "user/42", query: "topic=user/42&topic=user/42&topic=user/42&topic=user/42", status: 400},
		{name: "no grant (unknown placeholder)", grant: "-", status: 403, msg: errGrantRefused},
		{name: "empty grant", grant: "", status: 403, msg: errGrantRefused},
		{name: "only separators", grant: " , ,", status: 403, msg: errGrantRefused},
		{name: "an undeclared topic refuses the whole grant", grant: "user/42,admin/1", status: 403, msg: errGrantRefused},
		{name: "a deeper topic does not match one segment", grant: "user/42/x", status: 403, msg: errGrantRefused},
		{name: "an invalid name", grant: "user/4{2}", status: 403, msg: errGrantRefused},
		{name: "a pattern is not a grant", grant: "user/*", status: 403, msg: errGrantRefused},
		{name: "more than max_topics_per_subscriber", grant: "user/1,user/2,user/3,user/4", status: 403, msg: errGrantRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			refs, status, msg := h.resolveTopics(grantRequest(tc.query, tc.grant), q)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, msg, tc.status)
			}
			if status != 0 {
				if !strings.Contains(msg, tc.msg) {
					t.Fatalf("message %q does not say %q", msg, tc.msg)
				}
				return
			}
			if got := stream.TopicNames(refs); !slices.Equal(got, tc.want) {
				t.Fatalf("topics %q, want %q", got, tc.want)
			}
			for _, ref := range refs {
				if ref.Name != "news" && ref.Group == "" {
					t.Errorf("%s: not attributed to its pattern", ref.Name)
				}
			}
		})
	}
}

func TestValidateGrant(t *testing.T) {
	decls := func(names ...string) []hub.TopicDecl {
		var out []hub.TopicDecl
		for _, n := range names {
			out = append(out, hub.TopicDecl{Name: n})
		}
		return out
	}
	for _, tc := range []struct {
		grant string
		decls []hub.TopicDecl
		want  string // "" for valid
	}{
		{"", decls("user/{x}"), ""},
		{"{rp.header.X-Sse-Topics}", decls("user/*", "news"), ""},
		{"X-Sse-Topics", decls("user/*"), "has no placeholder"},
		{"{rp.header.X-Sse-Topics}", decls("user/*", "me/{http.auth.user.id}"), "use topic me/*"},
	} {
		err := validateGrant(tc.grant, tc.decls)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("grant %q: %v", tc.grant, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("grant %q: error %v, want one saying %q", tc.grant, err, tc.want)
		}
	}
}
