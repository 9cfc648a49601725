package mercure

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMercureRequestToken(t *testing.T) {
	def := newTestMercureAuth(t, MercureAuthConfig{})
	compat := newTestMercureAuth(t, MercureAuthConfig{compat: true})
	custom := newTestMercureAuth(t, MercureAuthConfig{CookieName: "hubToken"})
	customCompat := newTestMercureAuth(t, MercureAuthConfig{CookieName: "hubToken", compat: true})
	const c1, c0 = "__Secure-mercure_access_token", "mercureAuthorization"
	type cookie struct{ name, value string }
	cases := []struct {
		name    string
		auth    *MercureAuth
		headers []string // Authorization values
		query   string
		cookies []cookie
		want    MercureRequestToken
		bad     bool
	}{
		{name: "nothing", auth: def},
		{name: "header", auth: def, headers: []string{"Bearer h.e-_~+/="}, want: MercureRequestToken{"h.e-_~+/=", MercureFromHeader, "Authorization"}},
		{name: "scheme case-insensitive", auth: def, headers: []string{"bEARER h"}, want: MercureRequestToken{"h", MercureFromHeader, "Authorization"}},
		{name: "header beats cookie", auth: def, headers: []string{"Bearer h"}, cookies: []cookie{{c1, "c"}},
			want: MercureRequestToken{"h", MercureFromHeader, "Authorization"}},
		{name: "header beats query and cookie (compat)", auth: compat, headers: []string{"Bearer h"}, query: "authorization=q", cookies: []cookie{{c0, "c"}},
			want: MercureRequestToken{"h", MercureFromHeader, "Authorization"}},
		{name: "Basic header is malformed", auth: def, headers: []string{"Basic dTpw"}, cookies: []cookie{{c1, "c"}}, bad: true},
		{name: "scheme alone", auth: def, headers: []string{"Bearer"}, bad: true},
		{name: "two Bearer headers", auth: def, headers: []string{"Bearer a", "Bearer b"}, bad: true},
		{name: "Bearer and Basic headers", auth: def, headers: []string{"Bearer a", "Basic b"}, bad: true},
		{name: "Bearer without token", auth: def, headers: []string{"Bearer "}, bad: true},
		{name: "token with a space", auth: def, headers: []string{"Bearer a b"}, bad: true},
		{name: "token with a comma", auth: def, headers: []string{"Bearer a,b"}, bad: true},
		{name: "modern: no token from the query", auth: def, query: "authorization=q&access_token=q"},
		{name: "modern: the query is not a token even beside a cookie", auth: def, query: "authorization=q", cookies: []cookie{{c1, "c"}},
			want: MercureRequestToken{"c", MercureFromCookie, c1}},
		{name: "compat: 0.x query", auth: compat, query: "topic=x&authorization=q", want: MercureRequestToken{"q", MercureFromQuery, "authorization"}},
		{name: "compat: query beats cookie", auth: compat, query: "authorization=q", cookies: []cookie{{c0, "c"}}, want: MercureRequestToken{"q", MercureFromQuery, "authorization"}},
		{name: "compat: access_token is not 0.x", auth: compat, query: "access_token=q"},
		{name: "compat: query twice", auth: compat, query: "authorization=a&authorization=b", bad: true},
		{name: "compat: empty query token", auth: compat, query: "authorization=", bad: true},
		{name: "modern cookie", auth: def, cookies: []cookie{{c1, "new"}}, want: MercureRequestToken{"new", MercureFromCookie, c1}},
		{name: "modern: 0.x cookie ignored", auth: def, cookies: []cookie{{c0, "old"}, {"mercureAccessToken", "draft"}}},
		{name: "compat: modern cookie beats 0.x cookie", auth: compat, cookies: []cookie{{c0, "old"}, {c1, "new"}},
			want: MercureRequestToken{"new", MercureFromCookie, c1}},
		{name: "compat: 0.x cookie", auth: compat, cookies: []cookie{{c0, "old"}}, want: MercureRequestToken{"old", MercureFromCookie, c0}},
		{name: "empty cookie is absent", auth: compat, cookies: []cookie{{c1, ""}, {c0, "old"}},
			want: MercureRequestToken{"old", MercureFromCookie, c0}},
		{name: "cookie twice: the first", auth: def, cookies: []cookie{{c1, "specific"}, {c1, "general"}},
			want: MercureRequestToken{"specific", MercureFromCookie, c1}},
		{name: "cookie_name replaces the default", auth: custom, cookies: []cookie{{c1, "x"}, {"hubToken", "mine"}},
			want: MercureRequestToken{"mine", MercureFromCookie, "hubToken"}},
		{name: "cookie_name only", auth: custom, cookies: []cookie{{c1, "x"}}},
		{name: "compat: cookie_name replaces both", auth: customCompat, cookies: []cookie{{c0, "x"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://hub.example.com/.well-known/mercure?"+c.query, nil)
			for _, h := range c.headers {
				r.Header.Add("Authorization", h)
			}
			for _, ck := range c.cookies {
				r.AddCookie(&http.Cookie{Name: ck.name, Value: ck.value})
			}
			got, err := c.auth.RequestToken(r)
			if c.bad {
				if !errors.Is(err, ErrMercureInvalidRequest) {
					t.Fatalf("err = %v, want invalid_request", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestMercureCookieOrigin(t *testing.T) {
	a := newTestMercureAuth(t, MercureAuthConfig{PublishOrigins: []string{"https://app.example.com"}})
	cases := []struct {
		name    string
		method  string
		tls     bool
		source  MercureTokenSource
		origin  string
		referer string
		ok      bool
	}{
		{name: "cookie POST from own origin", method: "POST", tls: true, source: MercureFromCookie, origin: "https://hub.example.com", ok: true},
		{name: "cookie POST from listed origin", method: "POST", tls: true, source: MercureFromCookie, origin: "https://APP.example.com:443", ok: true},
		{name: "cookie POST from another site", method: "POST", tls: true, source: MercureFromCookie, origin: "https://evil.example.net"},
		{name: "scheme matters", method: "POST", tls: true, source: MercureFromCookie, origin: "http://hub.example.com"},
		{name: "own origin over plain http", method: "POST", source: MercureFromCookie, origin: "http://hub.example.com", ok: true},
		{name: "Referer when no Origin", method: "POST", tls: true, source: MercureFromCookie, referer: "https://app.example.com/page?x=1", ok: true},
		{name: "foreign Referer", method: "POST", tls: true, source: MercureFromCookie, referer: "https://evil.example.net/"},
		{name: "Origin beats Referer", method: "POST", tls: true, source: MercureFromCookie, origin: "https://evil.example.net", referer: "https://hub.example.com/"},
		{name: "neither header", method: "POST", tls: true, source: MercureFromCookie},
		{name: "null origin", method: "POST", tls: true, source: MercureFromCookie, origin: "null"},
		{name: "relative Referer", method: "POST", tls: true, source: MercureFromCookie, referer: "/page"},
		{name: "cookie GET is not checked", method: "GET", tls: true, source: MercureFromCookie, origin: "https://evil.example.net", ok: true},
		{name: "header token is not checked", method: "POST", tls: true, source: MercureFromHeader, origin: "https://evil.example.net", ok: true},
		{name: "query token is not checked", method: "POST", tls: true, source: MercureFromQuery, ok: true},
		{name: "cookie DELETE is checked", method: "DELETE", tls: true, source: MercureFromCookie, origin: "https://evil.example.net"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "http://hub.example.com/.well-known/mercure", nil)
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			if c.referer != "" {
				r.Header.Set("Referer", c.referer)
			}
			err := a.CheckCookieOrigin(r, c.source)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrMercureInvalidRequest) {
				t.Fatalf("err = %v, want a cross-origin refusal", err)
			}
		})
	}
}
