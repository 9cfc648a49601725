package main

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestMercureSubscriberTokenShare(t *testing.T) {
	for _, tc := range []struct {
		share float64
		want  int
	}{{0, 0}, {0.5, 50}, {0.25, 25}, {1, 100}} {
		m := &mercureConfig{key: "k", topic: "t", tokenShare: tc.share}
		if err := m.prepare(); err != nil {
			t.Fatal(err)
		}
		got := 0
		for i := range 100 {
			if m.subscriberToken(i) != "" {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("share %v: %d of 100 subscribers hold a token, want %d", tc.share, got, tc.want)
		}
	}
}

func TestMercureTokensAreModern(t *testing.T) {
	m := &mercureConfig{key: "secret", issuer: "https://localhost", audience: "http://127.0.0.1:8090/.well-known/mercure", topic: "t", tokenShare: 1}
	if err := m.prepare(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tok, action string }{{m.pubToken, "publish"}, {m.subToken, "subscribe"}} {
		claims := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(tc.tok, claims, func(*jwt.Token) (any, error) { return []byte("secret"), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(m.audience), jwt.WithIssuer(m.issuer), jwt.WithExpirationRequired())
		if err != nil {
			t.Fatalf("%s token: %v", tc.action, err)
		}
		if tok.Header["typ"] != "at+jwt" {
			t.Errorf("%s token: typ %v, want at+jwt", tc.action, tok.Header["typ"])
		}
		details, _ := claims["authorization_details"].([]any)
		if len(details) != 1 {
			t.Fatalf("%s token: authorization_details %v", tc.action, claims["authorization_details"])
		}
		d := details[0].(map[string]any)
		if d["type"] != mercureDetailType || d["actions"].([]any)[0] != tc.action {
			t.Errorf("%s token: detail %v", tc.action, d)
		}
	}
	bad := &mercureConfig{key: "k", topic: "t", tokenShare: 0.5, private: true}
	if bad.prepare() == nil {
		t.Error("private updates with subscribers that hold no token: accepted, want a usage error (they would count as lost)")
	}
}
