package mercure

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func metadataHandler(t *testing.T, cfg MercureAuthConfig) *Handler {
	t.Helper()
	a, err := NewMercureAuth(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return &Handler{auth: a, Subscriptions: true}
}

// The identity is derived from the request unless resource_identifier pins
// it; the base of relative matchers follows the pinned identity, not the
// client's Host (hole 7).
func TestMercureResourceIdentifier(t *testing.T) {
	k := mercureKeyring(t)
	derived := metadataHandler(t, modernConfig(k.secret32))
	pinnedCfg := modernConfig(k.secret32)
	pinnedCfg.ResourceIdentifier = testResource
	pinned := metadataHandler(t, pinnedCfg)
	urn := modernConfig(k.secret32)
	urn.ResourceIdentifier = "urn:example:hub"
	urnHub := metadataHandler(t, urn)

	r := httptest.NewRequest(http.MethodGet, "http://Evil.Example:8443/.well-known/mercure/subscriptions/exact/x", nil)
	r.TLS = &tls.ConnectionState{}
	for _, c := range []struct {
		name                 string
		m                    *Handler
		resource, base, meta string
	}{
		{"derived", derived, "https://evil.example:8443/.well-known/mercure", "https://evil.example:8443/.well-known/mercure",
			"https://evil.example:8443/.well-known/oauth-protected-resource/.well-known/mercure"},
		{"pinned", pinned, testResource, testResource, "https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure"},
		{"pinned URN", urnHub, "urn:example:hub", "https://evil.example:8443/.well-known/mercure",
			"https://evil.example:8443/.well-known/oauth-protected-resource/.well-known/mercure"},
	} {
		if got := c.m.resourceIdentifier(r); got != c.resource {
			t.Errorf("%s: resource %q, want %q", c.name, got, c.resource)
		}
		if got := c.m.hubBaseURL(r).String(); got != c.base {
			t.Errorf("%s: base %q, want %q", c.name, got, c.base)
		}
		if got := c.m.resourceMetadataURL(r); got != c.meta {
			t.Errorf("%s: metadata %q, want %q", c.name, got, c.meta)
		}
	}
	if got := pinned.bearerChallenge(r, ""); got != `Bearer resource_metadata="https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure"` {
		t.Errorf("bare challenge %q", got)
	}
	if got := pinned.bearerChallenge(r, "invalid_token"); got != `Bearer error="invalid_token", resource_metadata="https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure"` {
		t.Errorf("challenge %q", got)
	}
}

func TestMercureMetadataDocument(t *testing.T) {
	k := mercureKeyring(t)
	cfg := modernConfig(k.secret32)
	cfg.Issuers[0].AuthorizationServer = true
	cfg.ResourceIdentifier = testResource
	m := metadataHandler(t, cfg)
	serve := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		served, err := m.serveMetadata(w, httptest.NewRequest(method, "https://hub.example.com"+path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !served {
			w.Code = 0
		}
		return w
	}
	w := serve(http.MethodGet, "/.well-known/oauth-protected-resource/.well-known/mercure")
	var doc map[string]any
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &doc) != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	want := `map[authorization_details_types_supported:[https://mercure.rocks/authorization-detail] authorization_servers:[https://example.com] bearer_methods_supported:[header] mercure_cookie:__Secure-mercure_access_token mercure_subscriptions:true resource:https://hub.example.com/.well-known/mercure]`
	if got := fmt.Sprint(doc); got != want {
		t.Fatalf("document %s\nwant %s", got, want)
	}
	if w := serve(http.MethodPost, "/.well-known/oauth-protected-resource/.well-known/mercure"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
	for _, p := range []string{"/.well-known/oauth-protected-resource/other", "/.well-known/oauth-protected-resource/", "/.well-known/mercure"} {
		if w := serve(http.MethodGet, p); w.Code != 0 {
			t.Errorf("%s answered %d: not this hub's metadata", p, w.Code)
		}
	}
}
