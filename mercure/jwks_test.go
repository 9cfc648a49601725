package mercure

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// jwksServer serves a key set on 127.0.0.1 and counts the fetches.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	hits   atomic.Int64
	hit    chan struct{} // one element per fetch, never blocks
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{hit: make(chan struct{}, 1024), status: http.StatusOK}
	s.serve(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		s.hits.Add(1)
		select {
		case s.hit <- struct{}{}:
		default:
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the key set.
func (s *jwksServer) serve(keys ...map[string]any) {
	if keys == nil {
		keys = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	s.mu.Lock()
	s.body, s.status = b, http.StatusOK
	s.mu.Unlock()
}

func (s *jwksServer) fail(status int, body []byte) {
	s.mu.Lock()
	s.body, s.status = body, status
	s.mu.Unlock()
}

// awaitHits waits until the server has been fetched n times in all.
func (s *jwksServer) awaitHits(t *testing.T, n int64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for s.hits.Load() < n {
		select {
		case <-s.hit:
		case <-deadline:
			t.Fatalf("the key set was fetched %d times, want %d", s.hits.Load(), n)
		}
	}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk writes a public key as a JWK (RFC 7517, 7518, 8037).
func jwk(kid, alg string, pub any) map[string]any {
	m := map[string]any{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64u(k.N.Bytes()), b64u(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			panic(err)
		}
		raw := e.Bytes()[1:] // uncompressed point: 0x04 || X || Y
		size := len(raw) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, b64u(raw[:size]), b64u(raw[size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64u(k)
	case []byte:
		m["kty"], m["k"] = "oct", b64u(k)
	default:
		panic(fmt.Sprintf("jwk: %T", pub))
	}
	return m
}

// kidToken signs a subscribe token with kid in its header ("" for none).
func kidToken(t *testing.T, method jwt.SigningMethod, key any, kid string) string {
	t.Helper()
	h := map[string]any{}
	if kid != "" {
		h["kid"] = kid
	}
	return mercureToken(t, method, key, h, subscribeClaims(jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}))
}

func TestMercureJWKSVerifyRotateAndFlood(t *testing.T) {
	k := mercureKeyring(t)
	srv := newJWKSServer(t,
		jwk("rsa", "RS256", &k.rsa.PublicKey),
		jwk("ec", "", &k.ec256.PublicKey),
		jwk("ed", "EdDSA", k.ed.Public()),
		jwk("sym", "HS256", []byte(k.secret32)),
	)
	a := newTestMercureAuth(t, MercureAuthConfig{compat: true, JWKSURL: srv.URL + "/jwks.json", JWKSUnknownKIDInterval: caddy.Duration(time.Hour)})
	if a.Publisher == nil || a.Subscriber == nil {
		t.Fatal("jwks_url alone must serve both roles")
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("fetched %d times at load, want 1", n)
	}
	v := a.Subscriber

	for _, ok := range []struct {
		name string
		tok  string
	}{
		{"RS256", kidToken(t, jwt.SigningMethodRS256, k.rsa, "rsa")},
		{"ES256, JWK without alg", kidToken(t, jwt.SigningMethodES256, k.ec256, "ec")},
		{"EdDSA", kidToken(t, jwt.SigningMethodEdDSA, k.ed, "ed")},
		{"no kid: every key is tried", kidToken(t, jwt.SigningMethodES256, k.ec256, "")},
	} {
		if _, err := v.Verify(ok.tok, testResource); err != nil {
			t.Errorf("%s refused: %v", ok.name, err)
		}
	}
	for _, bad := range []struct {
		name string
		tok  string
	}{
		{"JWK alg RS256, token PS256", kidToken(t, jwt.SigningMethodPS256, k.rsa, "rsa")},
		{"wrong RSA key", kidToken(t, jwt.SigningMethodRS256, k.rsa2, "rsa")},
		{"ES256 token naming the RSA kid", kidToken(t, jwt.SigningMethodES256, k.ec256, "rsa")},
		{"HMAC with a published shared secret", kidToken(t, jwt.SigningMethodHS256, []byte(k.secret32), "sym")},
		{"HMAC keyed with the RSA public key", kidToken(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), "rsa")},
		{"none", mercureToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "rsa"}, subscribeClaims(nil))},
	} {
		_, err := v.Verify(bad.tok, testResource)
		if err == nil {
			t.Errorf("%s accepted", bad.name)
			continue
		}
		wantRefused(t, err, "")
	}

	// Rotation: the set now holds another key only. Its first token fetches
	// the set again; the old key no longer verifies.
	srv.serve(jwk("rsa-2", "RS256", &k.rsa2.PublicKey))
	if _, err := v.Verify(kidToken(t, jwt.SigningMethodRS256, k.rsa2, "rsa-2"), testResource); err != nil {
		t.Fatalf("rotated key refused: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("fetched %d times after a rotation, want 2", n)
	}
	if _, err := v.Verify(kidToken(t, jwt.SigningMethodRS256, k.rsa, "rsa"), testResource); err == nil {
		t.Fatal("a key removed from the set still verifies")
	}

	// A flood of tokens with random kids: no fetch (the one allowed per
	// interval was spent by the rotation), and no request waits for one.
	start := time.Now()
	for i := range 200 {
		_, err := v.Verify(kidToken(t, jwt.SigningMethodRS256, k.rsa2, fmt.Sprintf("random-%d", i)), testResource)
		wantRefused(t, err, "")
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("random kids caused %d fetches", n-2)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("200 unknown kids took %s: requests waited for the rate limiter", d)
	}
}

// One unknown-kid fetch per interval: with a short interval, a flood makes
// a bounded number of fetches.
func TestMercureJWKSUnknownKIDRate(t *testing.T) {
	k := mercureKeyring(t)
	srv := newJWKSServer(t, jwk("rsa", "RS256", &k.rsa.PublicKey))
	interval := 200 * time.Millisecond
	a := newTestMercureAuth(t, MercureAuthConfig{compat: true, JWKSURL: srv.URL, JWKSUnknownKIDInterval: caddy.Duration(interval)})
	start := time.Now()
	for i := 0; time.Since(start) < time.Second; i++ {
		_, err := a.Subscriber.Verify(kidToken(t, jwt.SigningMethodRS256, k.rsa, fmt.Sprintf("r%d", i)), testResource)
		wantRefused(t, err, "")
	}
	elapsed := time.Since(start)
	// The load, plus the burst of one and at most one fetch per interval;
	// and the limiter does let a fetch through again once an interval has
	// passed (a rotation is not locked out for good).
	max := 1 + 1 + int64(elapsed/interval) + 1
	if n := srv.hits.Load(); n > max || n < 3 {
		t.Fatalf("%d fetches in %s, want between 3 and %d", n, elapsed, max)
	}
}

func TestMercureJWKSBackgroundRefreshAndClose(t *testing.T) {
	k := mercureKeyring(t)
	srv := newJWKSServer(t, jwk("rsa", "RS256", &k.rsa.PublicKey))
	a, err := NewMercureAuth(context.Background(), MercureAuthConfig{
		compat:                 true,
		JWKSURL:                srv.URL,
		JWKSRefresh:            caddy.Duration(20 * time.Millisecond),
		JWKSUnknownKIDInterval: caddy.Duration(time.Hour),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	v := a.Subscriber
	// Spend the one unknown-kid fetch, so that only the background refresh
	// can bring the next key in.
	_, err = v.Verify(kidToken(t, jwt.SigningMethodRS256, k.rsa, "spent"), testResource)
	wantRefused(t, err, "")

	srv.serve(jwk("rsa-2", "RS256", &k.rsa2.PublicKey))
	tok := kidToken(t, jwt.SigningMethodRS256, k.rsa2, "rsa-2")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := v.Verify(tok, testResource); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background refresh never brought the rotated key in")
		}
		srv.awaitHits(t, srv.hits.Load()+1)
	}

	a.Close()
	// A fetch already running may still finish; none starts after that.
	settled := srv.hits.Load() + 1
	time.Sleep(200 * time.Millisecond) // 10 refresh intervals: observing an absence
	if n := srv.hits.Load(); n > settled {
		t.Fatalf("%d fetches after Close", n-settled+1)
	}
}

// Caddy starts when the key set cannot be fetched: the failure is logged,
// tokens are refused, and the set is fetched when a token needs it.
func TestMercureJWKSUnreachableAtLoad(t *testing.T) {
	k := mercureKeyring(t)
	srv := newJWKSServer(t)
	srv.fail(http.StatusServiceUnavailable, []byte("down"))
	core, logs := observer.New(zapcore.ErrorLevel)
	a, err := NewMercureAuth(context.Background(), MercureAuthConfig{compat: true, JWKSURL: srv.URL}, zap.New(core))
	if err != nil {
		t.Fatalf("an unreachable key set failed the load: %v", err)
	}
	defer a.Close()
	if logs.FilterMessageSnippet("JWKS").Len() != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
	srv.serve(jwk("rsa", "RS256", &k.rsa.PublicKey))
	if _, err := a.Subscriber.Verify(kidToken(t, jwt.SigningMethodRS256, k.rsa, "rsa"), testResource); err != nil {
		t.Fatalf("token refused once the key set is back: %v", err)
	}
}

// A key set larger than 1 MiB is not read.
func TestMercureJWKSTooLarge(t *testing.T) {
	k := mercureKeyring(t)
	srv := newJWKSServer(t)
	pad := strings.Repeat(" ", mercureJWKSMaxBody)
	keys, _ := json.Marshal([]any{jwk("rsa", "RS256", &k.rsa.PublicKey)})
	srv.fail(http.StatusOK, []byte(`{"keys":`+string(keys)+pad+`}`))
	core, logs := observer.New(zapcore.ErrorLevel)
	a, err := NewMercureAuth(context.Background(), MercureAuthConfig{compat: true, JWKSURL: srv.URL, JWKSUnknownKIDInterval: caddy.Duration(time.Hour)}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Subscriber.Verify(kidToken(t, jwt.SigningMethodRS256, k.rsa, "rsa"), testResource)
	wantRefused(t, err, "")
	if logs.FilterMessageSnippet("JWKS").Len() == 0 {
		t.Fatal("the oversized key set was not reported")
	}
}

// A role with its own key does not use the key set.
func TestMercureJWKSWithOneStaticRole(t *testing.T) {
	k := mercureKeyring(t)
	srv := newJWKSServer(t, jwk("rsa", "RS256", &k.rsa.PublicKey))
	a := newTestMercureAuth(t, MercureAuthConfig{compat: true, JWKSURL: srv.URL, PublisherJWT: &MercureKeyConfig{Key: k.secret64}})
	idp := kidToken(t, jwt.SigningMethodRS256, k.rsa, "rsa")
	if _, err := a.Subscriber.Verify(idp, testResource); err != nil {
		t.Fatalf("subscriber token from the key set refused: %v", err)
	}
	_, err := a.Publisher.Verify(idp, testResource)
	wantRefused(t, err, "")
	if _, err := a.Publisher.Verify(kidToken(t, jwt.SigningMethodHS256, []byte(k.secret64), ""), testResource); err != nil {
		t.Fatalf("publisher token refused: %v", err)
	}
}
