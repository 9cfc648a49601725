package main

import (
	"context"
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

// The hand-made form body is what url.Values would encode: the hub reads
// the same fields back, for every byte value of the data.
func TestMercureRequestBody(t *testing.T) {
	m := &mercureConfig{key: "k", topic: "https://example.com/a b?c=d&e", tokenShare: 1, private: true}
	if err := m.prepare(); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}
	var body []byte
	req := m.request(context.Background(), "http://127.0.0.1/", data, &body)
	if err := req.ParseForm(); err != nil {
		t.Fatal(err)
	}
	if got := req.PostForm.Get("data"); got != string(data) {
		t.Fatalf("data read back as %q", got)
	}
	if req.PostForm.Get("topic") != m.topic || req.PostForm.Get("private") != "on" {
		t.Fatalf("form read back as %v", req.PostForm)
	}
	if req.Header.Get("Authorization") != "Bearer "+m.pubToken || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("headers %v", req.Header)
	}
}
