package caddysse

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMercureRequestToken(t *testing.T) {
	def := newTestMercureAuth(t, MercureAuthConfig{})
	custom := newTestMercureAuth(t, MercureAuthConfig{CookieName: "hubToken"})
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
		{name: "header", auth: def, headers: []string{"Bearer h"}, want: MercureRequestToken{"h", MercureFromHeader, "Authorization"}},
		{name: "scheme case-insensitive", auth: def, headers: []string{"bearer h"}, want: MercureRequestToken{"h", MercureFromHeader, "Authorization"}},
		{name: "header beats query and cookie", auth: def, headers: []string{"Bearer h"}, query: "access_token=q", cookies: []cookie{{"mercureAccessToken", "c"}},
			want: MercureRequestToken{"h", MercureFromHeader, "Authorization"}},
		{name: "Basic header is not ours", auth: def, headers: []string{"Basic dTpw"}, cookies: []cookie{{"mercureAuthorization", "c"}},
			want: MercureRequestToken{"c", MercureFromCookie, "mercureAuthorization"}},
		{name: "two Bearer headers", auth: def, headers: []string{"Bearer a", "Bearer b"}, bad: true},
		{name: "Bearer without token", auth: def, headers: []string{"Bearer "}, bad: true},
		{name: "1.0 query beats cookie", auth: def, query: "access_token=q", cookies: []cookie{{"mercureAccessToken", "c"}},
			want: MercureRequestToken{"q", MercureFromQuery, "access_token"}},
		{name: "0.x query", auth: def, query: "topic=x&authorization=q", want: MercureRequestToken{"q", MercureFromQuery, "authorization"}},
		{name: "query twice", auth: def, query: "access_token=a&access_token=b", bad: true},
		{name: "both query names", auth: def, query: "access_token=a&authorization=b", bad: true},
		{name: "empty query token", auth: def, query: "access_token=", bad: true},
		{name: "1.0 cookie beats 0.x cookie", auth: def, cookies: []cookie{{"mercureAuthorization", "old"}, {"mercureAccessToken", "new"}},
			want: MercureRequestToken{"new", MercureFromCookie, "mercureAccessToken"}},
		{name: "0.x cookie", auth: def, cookies: []cookie{{"mercureAuthorization", "old"}}, want: MercureRequestToken{"old", MercureFromCookie, "mercureAuthorization"}},
		{name: "empty cookie is absent", auth: def, cookies: []cookie{{"mercureAccessToken", ""}, {"mercureAuthorization", "old"}},
			want: MercureRequestToken{"old", MercureFromCookie, "mercureAuthorization"}},
		{name: "cookie twice: the first", auth: def, cookies: []cookie{{"mercureAccessToken", "specific"}, {"mercureAccessToken", "general"}},
			want: MercureRequestToken{"specific", MercureFromCookie, "mercureAccessToken"}},
		{name: "cookie_name replaces the defaults", auth: custom, cookies: []cookie{{"mercureAccessToken", "x"}, {"hubToken", "mine"}},
			want: MercureRequestToken{"mine", MercureFromCookie, "hubToken"}},
		{name: "cookie_name only", auth: custom, cookies: []cookie{{"mercureAuthorization", "x"}}},
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
			if !c.ok && !errors.Is(err, ErrMercureCrossOrigin) {
				t.Fatalf("err = %v, want a cross-origin refusal", err)
			}
		})
	}
}
