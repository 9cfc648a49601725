package mercure

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Keys are generated once per test binary: RSA generation is slow under -race.
type mercureTestKeyring struct {
	rsa, rsa2            *rsa.PrivateKey
	ec256, ec384, ec521  *ecdsa.PrivateKey
	ed                   ed25519.PrivateKey
	secret32, secret64   string
	rsaPEM, ec256PEM     string
	ec384PEM, ec521PEM   string
	edPEM, rsaPrivatePEM string
}

var (
	mercureKeyringOnce sync.Once
	mercureKeyringVal  *mercureTestKeyring
)

func mercureKeyring(t *testing.T) *mercureTestKeyring {
	t.Helper()
	mercureKeyringOnce.Do(func() {
		k := &mercureTestKeyring{
			secret32: "0123456789abcdef0123456789abcdef",
			secret64: strings.Repeat("s3cr3t-0", 8),
		}
		k.rsa, k.rsa2 = mustRSA(2048), mustRSA(2048)
		k.ec256, k.ec384, k.ec521 = mustEC(elliptic.P256()), mustEC(elliptic.P384()), mustEC(elliptic.P521())
		k.ed = mustEd()
		k.rsaPEM = pemPublicKey(&k.rsa.PublicKey)
		k.ec256PEM = pemPublicKey(&k.ec256.PublicKey)
		k.ec384PEM = pemPublicKey(&k.ec384.PublicKey)
		k.ec521PEM = pemPublicKey(&k.ec521.PublicKey)
		k.edPEM = pemPublicKey(k.ed.Public())
		der, _ := x509.MarshalPKCS8PrivateKey(k.rsa)
		k.rsaPrivatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		mercureKeyringVal = k
	})
	return mercureKeyringVal
}

func pemPublicKey(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// mercureToken signs claims with method and key; header entries are added
// to (or, with a nil value, removed from) the JOSE header.
func mercureToken(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

// subscribeClaims is a 0.x claim set granting subscribe on one topic.
func subscribeClaims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"https://example.com/books/1"}}}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// newTestMercureAuth builds the verifiers of cfg. A configuration with
// top-level keys and no issuer is Mercure's implicit issuer, which only
// compatibility mode accepts: it is put in that mode.
func newTestMercureAuth(t *testing.T, cfg MercureAuthConfig) *MercureAuth {
	t.Helper()
	if cfg.hasTopLevelKeys() && cfg.Issuer == "" {
		cfg.compat = true
	}
	a, err := NewMercureAuth(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("NewMercureAuth: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// wantRefused checks that err is a safe invalid-token error with the
// given reason.
func wantRefused(t *testing.T, err error, reason string) {
	t.Helper()
	var te *MercureTokenError
	if !errors.As(err, &te) || !errors.Is(err, ErrMercureInvalidToken) {
		t.Fatalf("error = %v, want an invalid token error", err)
	}
	if reason != "" && !strings.Contains(te.Reason, reason) {
		t.Fatalf("reason = %q, want it to contain %q", te.Reason, reason)
	}
}

func TestMercureVerifyEveryAlgorithm(t *testing.T) {
	k := mercureKeyring(t)
	cases := []struct {
		alg       string
		key       string // configured
		cfgAlg    string // "" to test the default
		sign      any
		wrongSign any // a key of the right type that is not the configured one
	}{
		{"HS256", k.secret32, "", []byte(k.secret32), []byte(strings.Repeat("x", 32))},
		{"HS384", k.secret64, "HS384", []byte(k.secret64), []byte(strings.Repeat("x", 64))},
		{"HS512", k.secret64, "HS512", []byte(k.secret64), []byte(strings.Repeat("x", 64))},
		{"RS256", k.rsaPEM, "", k.rsa, k.rsa2},
		{"RS384", k.rsaPEM, "RS384", k.rsa, k.rsa2},
		{"RS512", k.rsaPEM, "RS512", k.rsa, k.rsa2},
		{"PS256", k.rsaPEM, "PS256", k.rsa, k.rsa2},
		{"PS384", k.rsaPEM, "PS384", k.rsa, k.rsa2},
		{"PS512", k.rsaPEM, "PS512", k.rsa, k.rsa2},
		{"ES256", k.ec256PEM, "", k.ec256, mustEC(elliptic.P256())},
		{"ES384", k.ec384PEM, "ES384", k.ec384, mustEC(elliptic.P384())},
		{"ES512", k.ec521PEM, "", k.ec521, mustEC(elliptic.P521())},
		{"EdDSA", k.edPEM, "", k.ed, mustEd()},
	}
	for _, c := range cases {
		t.Run(c.alg, func(t *testing.T) {
			a := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: c.key, Alg: c.cfgAlg}})
			v := a.Subscriber
			if a.Publisher != nil {
				t.Fatal("publisher verifier without a publisher key")
			}
			if _, err := a.Verifier(MercurePublisher).Verify("x.y.z", testResource); err == nil {
				t.Fatal("a role without a key accepted a token")
			}
			if len(v.fallback.algs) != 1 || v.fallback.algs[0] != c.alg {
				t.Fatalf("configured algorithms %v, want [%s]", v.fallback.algs, c.alg)
			}
			method := jwt.GetSigningMethod(c.alg)
			exp := time.Now().Add(time.Hour).Truncate(time.Second)
			tok := mercureToken(t, method, c.sign, nil, subscribeClaims(jwt.MapClaims{"exp": exp.Unix(), "sub": "alice"}))
			g, err := v.Verify(tok, testResource)
			if err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			if len(g.Subscribe) != 1 || g.Subscribe[0].Value != "https://example.com/books/1" || len(g.Publish) != 0 {
				t.Fatalf("grant %+v", g)
			}
			if !g.Expires.Equal(exp) || g.Subject != "alice" || g.AccessToken {
				t.Fatalf("grant expires %v subject %q access %v", g.Expires, g.Subject, g.AccessToken)
			}

			_, err = v.Verify(mercureToken(t, method, c.wrongSign, nil, subscribeClaims(nil)), testResource)
			wantRefused(t, err, "")

			parts := strings.Split(tok, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			forged := strings.Replace(string(payload), "books/1", "books/*", 1)
			tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
			_, err = v.Verify(tampered, testResource)
			wantRefused(t, err, "signature")

			sig := []byte(parts[2])
			sig[0] ^= 0x01 // another base64url letter
			_, err = v.Verify(parts[0]+"."+parts[1]+"."+string(sig), testResource)
			wantRefused(t, err, "")

			_, err = v.Verify(parts[0]+"."+parts[1]+".", testResource)
			wantRefused(t, err, "")
		})
	}
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEd() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// A token's alg is checked against the configured one: another algorithm of
// the same family, none, and an HMAC signed with the public key are refused.
func TestMercureVerifyAlgorithmPinned(t *testing.T) {
	k := mercureKeyring(t)
	hs := newTestMercureAuth(t, MercureAuthConfig{PublisherJWT: &MercureKeyConfig{Key: k.secret64, Alg: "HS256"}}).Publisher
	rs := newTestMercureAuth(t, MercureAuthConfig{PublisherJWT: &MercureKeyConfig{Key: k.rsaPEM, Alg: "RS256"}}).Publisher

	t.Run("other HMAC size", func(t *testing.T) {
		_, err := hs.Verify(mercureToken(t, jwt.SigningMethodHS512, []byte(k.secret64), nil, subscribeClaims(nil)), testResource)
		wantRefused(t, err, "")
	})
	t.Run("RS512 for RS256", func(t *testing.T) {
		_, err := rs.Verify(mercureToken(t, jwt.SigningMethodRS512, k.rsa, nil, subscribeClaims(nil)), testResource)
		wantRefused(t, err, "")
	})
	t.Run("alg confusion: HS256 keyed with the RSA public key", func(t *testing.T) {
		der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
		for _, secret := range [][]byte{[]byte(k.rsaPEM), der, []byte(strings.TrimSpace(k.rsaPEM))} {
			_, err := rs.Verify(mercureToken(t, jwt.SigningMethodHS256, secret, nil, subscribeClaims(nil)), testResource)
			wantRefused(t, err, "")
		}
	})
	t.Run("none", func(t *testing.T) {
		none := mercureToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, subscribeClaims(nil))
		for _, v := range []*MercureVerifier{hs, rs} {
			_, err := v.Verify(none, testResource)
			wantRefused(t, err, "")
		}
		// Hand-made variants: other spellings, and a signature left on.
		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"mercure":{"publish":["*"]}}`))
		for _, h := range []string{`{"alg":"none"}`, `{"alg":"None","typ":"JWT"}`, `{"alg":"NONE"}`, `{"typ":"JWT"}`} {
			head := base64.RawURLEncoding.EncodeToString([]byte(h))
			for _, tok := range []string{head + "." + payload + ".", head + "." + payload + ".c2ln"} {
				_, err := hs.Verify(tok, testResource)
				wantRefused(t, err, "")
			}
		}
	})
	t.Run("ES256 token for an RS256 key", func(t *testing.T) {
		_, err := rs.Verify(mercureToken(t, jwt.SigningMethodES256, k.ec256, nil, subscribeClaims(nil)), testResource)
		wantRefused(t, err, "")
	})
}

func TestMercureVerifyClaims(t *testing.T) {
	k := mercureKeyring(t)
	secret := []byte(k.secret32)
	now := time.Now()
	modern := newTestMercureAuth(t, modernConfig(k.secret32)).Subscriber
	compat := newTestMercureAuth(t, compatConfig(k.secret32)).Subscriber
	compatNamed := func() *MercureVerifier { // compatibility mode with an issuer block
		cfg := modernConfig(k.secret32)
		cfg.compat = true
		return newTestMercureAuth(t, cfg).Subscriber
	}()
	grant := jwt.MapClaims{"authorization_details": []any{map[string]any{"type": mercureAuthorizationDetailType,
		"actions": []string{"subscribe"}, "topics": []any{map[string]any{"match": "https://example.com/books/1"}}}}}
	at := func(extra jwt.MapClaims) jwt.MapClaims {
		c := accessClaims(grant)
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	cases := []struct {
		name   string
		v      *MercureVerifier
		header map[string]any
		claims jwt.MapClaims
		reason string // "" accepted
	}{
		// Modern mode: RFC 9068 access tokens.
		{"access token", modern, atHeader, at(nil), ""},
		{"application/AT+JWT", modern, map[string]any{"typ": "application/AT+JWT"}, at(nil), ""},
		{"aud in an array", modern, atHeader, at(jwt.MapClaims{"aud": []string{"https://other.example.com", testResource}}), ""},
		{"iat in the future is not checked", modern, atHeader, at(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), ""},
		{"no typ", modern, map[string]any{"typ": nil}, at(nil), "typ is not at+jwt"},
		{"typ JWT", modern, map[string]any{"typ": "JWT"}, at(nil), "protocol_version_compatibility 8"},
		{"ID token", modern, map[string]any{"typ": "id_token+jwt"}, at(nil), "typ"},
		{"typ not a string", modern, map[string]any{"typ": 7}, at(nil), "typ"},
		{"no exp", modern, atHeader, at(jwt.MapClaims{"exp": nil}), "no exp"},
		{"expired", modern, atHeader, at(jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix()}), "expired"},
		{"expired within leeway", modern, atHeader, at(jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()}), ""},
		{"not valid yet", modern, atHeader, at(jwt.MapClaims{"nbf": now.Add(2 * time.Minute).Unix()}), "not valid yet"},
		{"nbf within leeway", modern, atHeader, at(jwt.MapClaims{"nbf": now.Add(10 * time.Second).Unix()}), ""},
		{"exp not a number", modern, atHeader, at(jwt.MapClaims{"exp": "tomorrow"}), "malformed"},
		{"no iss", modern, atHeader, at(jwt.MapClaims{"iss": nil}), "no iss"},
		{"unknown iss", modern, atHeader, at(jwt.MapClaims{"iss": "https://evil.example.com"}), "not a trusted issuer"},
		{"no aud", modern, atHeader, at(jwt.MapClaims{"aud": nil}), "aud does not contain"},
		{"wrong aud", modern, atHeader, at(jwt.MapClaims{"aud": "https://other.example.com/.well-known/mercure"}), "aud does not contain"},
		{"aud array without ours", modern, atHeader, at(jwt.MapClaims{"aud": []string{"https://other.example.com"}}), "aud does not contain"},
		{"crit", modern, map[string]any{"typ": "at+jwt", "crit": []string{"exp"}}, at(nil), "critical"},
		{"0.x token", modern, nil, subscribeClaims(nil), "typ is not at+jwt"},

		// Compatibility mode: what Mercure 0.24.2 accepts, too.
		{"0.x without exp", compat, nil, subscribeClaims(nil), ""},
		{"0.x typ JWT", compat, map[string]any{"typ": "JWT"}, subscribeClaims(nil), ""},
		{"0.x expired", compat, nil, subscribeClaims(jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix()}), "expired"},
		{"0.x not valid yet", compat, nil, subscribeClaims(jwt.MapClaims{"nbf": now.Add(2 * time.Minute).Unix()}), "not valid yet"},
		{"0.x ID token", compat, map[string]any{"typ": "id_token+jwt"}, subscribeClaims(nil), "typ"},
		{"access token on the implicit issuer", compat, atHeader, at(nil), ""},
		{"access token without aud", compat, atHeader, at(jwt.MapClaims{"aud": nil, "exp": nil}), ""},
		{"0.x token, issuer block as fallback", compatNamed, nil, subscribeClaims(nil), ""},
		{"0.x token with another iss", compatNamed, nil, subscribeClaims(jwt.MapClaims{"iss": "https://other.example.com"}), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.v.Verify(mercureToken(t, jwt.SigningMethodHS256, secret, c.header, c.claims), testResource)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantRefused(t, err, c.reason)
		})
	}
}

// Keys are bound to their issuer: a token is verified only with the key
// of the issuer its iss names, never with another trusted issuer's.
func TestMercureVerifyIssuerBinding(t *testing.T) {
	k := mercureKeyring(t)
	cfg := MercureAuthConfig{Issuers: []MercureIssuerConfig{
		{Issuer: "https://a.example", Publisher: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: k.secret32}}},
		{Issuer: "https://b.example", Publisher: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: k.rsaPEM}}},
	}}
	v := newTestMercureAuth(t, cfg).Publisher
	claims := func(iss string) jwt.MapClaims {
		return accessClaims(jwt.MapClaims{"iss": iss})
	}
	if _, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), atHeader, claims("https://a.example")), testResource); err != nil {
		t.Fatalf("issuer a: %v", err)
	}
	if _, err := v.Verify(mercureToken(t, jwt.SigningMethodRS256, k.rsa, atHeader, claims("https://b.example")), testResource); err != nil {
		t.Fatalf("issuer b: %v", err)
	}
	// Signed by a, claiming b: b's key is RSA, so HS256 is not allowed.
	_, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), atHeader, claims("https://b.example")), testResource)
	wantRefused(t, err, "algorithm HS256 is not allowed for this issuer")
	// Signed by b, claiming a.
	_, err = v.Verify(mercureToken(t, jwt.SigningMethodRS256, k.rsa, atHeader, claims("https://a.example")), testResource)
	wantRefused(t, err, "algorithm RS256 is not allowed")
	// The public key used as an HMAC secret under b's name.
	_, err = v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.rsaPEM), atHeader, claims("https://b.example")), testResource)
	wantRefused(t, err, "not allowed")
	// Two issuers: no fallback, even in compatibility mode.
	cfg.compat = true
	cv := newTestMercureAuth(t, cfg).Publisher
	_, err = cv.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), nil, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}), testResource)
	wantRefused(t, err, "no iss")
}

func TestMercureVerifyLimits(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}, MaxTokenSize: 512}).Subscriber
	long := subscribeClaims(jwt.MapClaims{"pad": strings.Repeat("x", 600)})
	_, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), nil, long), testResource)
	wantRefused(t, err, "larger than 512 bytes")
	for _, tok := range []string{"", "abc", "a.b", "a.b.c.d", "....", "ey.ey.ey"} {
		_, err := v.Verify(tok, testResource)
		wantRefused(t, err, "")
	}
}

// The clock is the verifier's: a token valid now is refused an hour later.
func TestMercureVerifyClock(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}, Leeway: new(caddy.Duration)}).Subscriber
	tok := mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), nil, subscribeClaims(jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()}))
	if _, err := v.Verify(tok, testResource); err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return time.Now().Add(time.Hour) }
	_, err := v.Verify(tok, testResource)
	wantRefused(t, err, "expired")
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("%v does not wrap jwt.ErrTokenExpired", err)
	}
}

func TestMercureKeySources(t *testing.T) {
	k := mercureKeyring(t)
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "publisher.pem")
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(pemFile, []byte(k.ec256PEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(k.secret32+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MERCURE_TEST_JWT_KEY", k.secret32)
	t.Setenv("MERCURE_TEST_JWT_ALG", "")
	hsTok := mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), nil, subscribeClaims(nil))
	esTok := mercureToken(t, jwt.SigningMethodES256, k.ec256, nil, subscribeClaims(nil))
	cases := []struct {
		name string
		kc   MercureKeyConfig
		tok  string
	}{
		{"key_file PEM", MercureKeyConfig{KeyFile: pemFile}, esTok},
		{"key_file secret, trailing newline dropped", MercureKeyConfig{KeyFile: secretFile}, hsTok},
		{"file placeholder", MercureKeyConfig{Key: "{file." + pemFile + "}", Alg: "ES256"}, esTok},
		{"env placeholders, empty alg means default", MercureKeyConfig{Key: "{env.MERCURE_TEST_JWT_KEY}", Alg: "{env.MERCURE_TEST_JWT_ALG}"}, hsTok},
		{"RSA PUBLIC KEY block", MercureKeyConfig{Key: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))},
			mercureToken(t, jwt.SigningMethodRS256, k.rsa, nil, subscribeClaims(nil))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kc := c.kc
			v := newTestMercureAuth(t, MercureAuthConfig{PublisherJWT: &kc}).Publisher
			if _, err := v.Verify(c.tok, testResource); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestMercureConfigErrors(t *testing.T) {
	k := mercureKeyring(t)
	small := mustRSA(1024)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	pub := func(key, alg string) MercureAuthConfig {
		return MercureAuthConfig{PublisherJWT: &MercureKeyConfig{Key: key, Alg: alg}}
	}
	secret := "a-secret-that-must-never-leak-in-errors"
	cases := []struct {
		name string
		cfg  MercureAuthConfig
		want string
	}{
		{"no key", pub("", "HS256"), "publisher_jwt: no key"},
		{"short HS256", MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: strings.Repeat("k", 31)}}, "subscriber_jwt: an HS256 secret must be at least 32 bytes"},
		{"short HS384", pub(strings.Repeat("k", 47), "HS384"), "at least 48 bytes"},
		{"short HS512", pub(secret, "HS512"), "at least 64 bytes"},
		{"unknown alg", pub(k.secret32, "HS1024"), `unknown algorithm "HS1024"`},
		{"none", pub(k.secret32, "none"), "never accepted"},
		{"lower-case alg", pub(k.secret32, "hs256"), "unknown algorithm"},
		{"PEM with HMAC alg", pub(k.rsaPEM, "HS256"), "takes a shared secret, not a PEM"},
		{"secret with RSA alg", pub(secret, "RS256"), "needs a PEM public key"},
		{"RSA key, EC alg", pub(k.rsaPEM, "ES256"), "does not take an RSA key"},
		{"EC key, RSA alg", pub(k.ec256PEM, "RS256"), "does not take an ECDSA key"},
		{"EC curve mismatch", pub(k.ec384PEM, "ES256"), "ES256 needs a P-256 key, this one is P-384"},
		{"Ed25519 key, ES alg", pub(k.edPEM, "ES256"), "does not take an Ed25519 key"},
		{"private key", pub(k.rsaPrivatePEM, "RS256"), "private key"},
		{"bad PEM", pub("-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n", "RS256"), "does not parse"},
		{"truncated PEM", pub("-----BEGIN PUBLIC KEY-----\nMIIB", "RS256"), "does not parse"},
		{"two PEM blocks", pub(k.rsaPEM+k.ec256PEM, "RS256"), "more than one block"},
		{"short RSA", pub(pemPublicKey(&small.PublicKey), "RS256"), "1024 bits"},
		{"key and key_file", MercureAuthConfig{PublisherJWT: &MercureKeyConfig{Key: secret, KeyFile: missing}}, "not both"},
		{"missing key_file", MercureAuthConfig{PublisherJWT: &MercureKeyConfig{KeyFile: missing}}, "key_file"},
		{"unset env placeholder", pub("{env.MERCURE_TEST_UNSET_VARIABLE}", ""), "publisher_jwt: key"},
		{"negative leeway", MercureAuthConfig{Leeway: durationPtr(-time.Second)}, "leeway"},
		{"huge leeway", MercureAuthConfig{Leeway: durationPtr(time.Hour)}, "leeway"},
		{"negative limit", MercureAuthConfig{MaxTokenSelectors: -1}, "max_token_selectors"},
		{"cookie name", MercureAuthConfig{CookieName: "a b"}, "cookie_name"},
		{"publish origins *", MercureAuthConfig{PublishOrigins: []string{"*"}}, "publish_origins"},
		{"publish origins null", MercureAuthConfig{PublishOrigins: []string{"null"}}, "publish_origins"},
		{"publish origins path", MercureAuthConfig{PublishOrigins: []string{"https://example.com/app"}}, "publish_origins"},
		{"jwks over http", MercureAuthConfig{JWKSURL: "http://auth.example.com/jwks.json"}, "jwks_url: \"http://auth.example.com/jwks.json\" is plain http"},
		{"jwks not a URL", MercureAuthConfig{JWKSURL: "auth.example.com"}, "jwks_url"},
		{"jwks never used", MercureAuthConfig{JWKSURL: "https://auth.example.com/jwks.json", PublisherJWT: &MercureKeyConfig{Key: k.secret32}, SubscriberJWT: &MercureKeyConfig{Key: k.secret64}}, "never be used"},
		{"role key and key set", MercureAuthConfig{PublisherJWT: &MercureKeyConfig{Key: k.secret32}, PublisherJWKSURL: "https://auth.example.com/jwks.json"}, "give one"},
		{"resource identifier not absolute", MercureAuthConfig{ResourceIdentifier: "/.well-known/mercure"}, "not an absolute URI"},
		{"resource identifier with fragment", MercureAuthConfig{ResourceIdentifier: "https://hub.example.com/.well-known/mercure#x"}, "fragment"},
		{"audience and resource_identifier differ", MercureAuthConfig{ResourceIdentifier: testResource, Audience: "https://other.example.com"}, "former name"},
		{"issuer without name", MercureAuthConfig{Issuers: []MercureIssuerConfig{{Publisher: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: k.secret32}}}}}, "issuer identifier"},
		{"issuer without keys", MercureAuthConfig{Issuers: []MercureIssuerConfig{{Issuer: testIssuer}}}, "give a publisher or subscriber key"},
		{"issuer twice", MercureAuthConfig{Issuers: []MercureIssuerConfig{
			{Issuer: testIssuer, Publisher: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: k.secret32}}},
			{Issuer: testIssuer, Subscriber: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: k.secret32}}}}}, "declared twice"},
		{"jwt and jwks_uri", MercureAuthConfig{Issuers: []MercureIssuerConfig{{Issuer: testIssuer,
			Publisher: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: k.secret32}, JWKSURI: "https://auth.example.com/jwks.json"}}}}, "not both"},
		{"jwks_uri with HMAC", MercureAuthConfig{Issuers: []MercureIssuerConfig{{Issuer: testIssuer,
			Publisher: &MercureVerifierConfig{JWKSURI: "https://auth.example.com/jwks.json", Algorithms: []string{"HS256"}}}}}, "asymmetric"},
		{"jwks_uri file missing", MercureAuthConfig{Issuers: []MercureIssuerConfig{{Issuer: testIssuer,
			Publisher: &MercureVerifierConfig{JWKSURI: "file://" + missing}}}}, "jwks_uri"},
		{"issuer with block and top-level keys", MercureAuthConfig{Issuer: testIssuer, PublisherJWT: &MercureKeyConfig{Key: k.secret32},
			Issuers: []MercureIssuerConfig{{Issuer: testIssuer, Subscriber: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: k.secret32}}}}}, "one place"},
		{"one-argument issuer without keys", MercureAuthConfig{Issuer: testIssuer}, "one-argument form"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("MERCURE_TEST_UNSET_VARIABLE", "")
			c.cfg.compat = true // the top-level keys are the implicit issuer
			a, err := NewMercureAuth(context.Background(), c.cfg, nil)
			if err == nil {
				a.Close()
				t.Fatalf("accepted, want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "MIIB") {
				t.Fatalf("error %q shows key material", err)
			}
		})
	}
}

// In modern mode, top-level keys need the issuer they belong to: without
// it they are Mercure's implicit issuer, compatibility mode only.
func TestMercureImplicitIssuerIsCompatOnly(t *testing.T) {
	k := mercureKeyring(t)
	cfg := MercureAuthConfig{PublisherJWT: &MercureKeyConfig{Key: k.secret32}}
	_, err := NewMercureAuth(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "protocol_version_compatibility 8") || !strings.Contains(err.Error(), "issuer <iss>") {
		t.Fatalf("error %v, want the way out", err)
	}
	cfg.Issuer = testIssuer // this project's `issuer <iss>`: an issuer block
	v := newTestMercureAuth(t, cfg).Publisher
	if _, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), atHeader, accessClaims(nil)), testResource); err != nil {
		t.Fatalf("named top-level issuer: %v", err)
	}
}

// Mercure's documented development secret is accepted (its quickstart and
// conformance suite use it) and warned about at load.
func TestMercureExampleSecretWarns(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	cfg := MercureAuthConfig{Issuers: []MercureIssuerConfig{{Issuer: "https://localhost",
		Publisher: &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: mercureExampleSecret, Alg: "HS256"}}}}}
	a, err := NewMercureAuth(context.Background(), cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if logs.FilterMessageSnippet("example secret").Len() != 1 {
		t.Fatalf("warnings %v", logs.All())
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.Context), mercureExampleSecret) {
			t.Fatal("the log shows the secret")
		}
	}
}

func durationPtr(d time.Duration) *caddy.Duration {
	c := caddy.Duration(d)
	return &c
}

// Errors are safe to show: no token content, no key.
func TestMercureErrorsAreSafe(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}}).Subscriber
	tok := mercureToken(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 32)), nil, subscribeClaims(jwt.MapClaims{"sub": "secret-subject"}))
	_, err := v.Verify(tok, testResource)
	wantRefused(t, err, "bad signature")
	for _, leak := range []string{k.secret32, "secret-subject", tok[:20]} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("error %q contains %q", err, leak)
		}
	}
	b, _ := json.Marshal(err.Error())
	if string(b) != `"invalid token: bad signature"` {
		t.Fatalf("error text %s", b)
	}
}
