package caddysse

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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
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

func newTestMercureAuth(t *testing.T, cfg MercureAuthConfig) *MercureAuth {
	t.Helper()
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
			if _, err := a.Verifier(MercurePublisher).Verify("x.y.z"); err == nil {
				t.Fatal("a role without a key accepted a token")
			}
			if len(v.algs) != 1 || v.algs[0] != c.alg {
				t.Fatalf("configured algorithms %v, want [%s]", v.algs, c.alg)
			}
			method := jwt.GetSigningMethod(c.alg)
			exp := time.Now().Add(time.Hour).Truncate(time.Second)
			tok := mercureToken(t, method, c.sign, nil, subscribeClaims(jwt.MapClaims{"exp": exp.Unix(), "sub": "alice"}))
			g, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			if len(g.Subscribe) != 1 || g.Subscribe[0].Value != "https://example.com/books/1" || len(g.Publish) != 0 {
				t.Fatalf("grant %+v", g)
			}
			if !g.Expires.Equal(exp) || g.Subject != "alice" || g.AccessToken {
				t.Fatalf("grant expires %v subject %q access %v", g.Expires, g.Subject, g.AccessToken)
			}

			_, err = v.Verify(mercureToken(t, method, c.wrongSign, nil, subscribeClaims(nil)))
			wantRefused(t, err, "")

			parts := strings.Split(tok, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			forged := strings.Replace(string(payload), "books/1", "books/*", 1)
			tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
			_, err = v.Verify(tampered)
			wantRefused(t, err, "signature")

			sig := []byte(parts[2])
			sig[0] ^= 0x01 // another base64url letter
			_, err = v.Verify(parts[0] + "." + parts[1] + "." + string(sig))
			wantRefused(t, err, "")

			_, err = v.Verify(parts[0] + "." + parts[1] + ".")
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
		_, err := hs.Verify(mercureToken(t, jwt.SigningMethodHS512, []byte(k.secret64), nil, subscribeClaims(nil)))
		wantRefused(t, err, "")
	})
	t.Run("RS512 for RS256", func(t *testing.T) {
		_, err := rs.Verify(mercureToken(t, jwt.SigningMethodRS512, k.rsa, nil, subscribeClaims(nil)))
		wantRefused(t, err, "")
	})
	t.Run("alg confusion: HS256 keyed with the RSA public key", func(t *testing.T) {
		der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
		for _, secret := range [][]byte{[]byte(k.rsaPEM), der, []byte(strings.TrimSpace(k.rsaPEM))} {
			_, err := rs.Verify(mercureToken(t, jwt.SigningMethodHS256, secret, nil, subscribeClaims(nil)))
			wantRefused(t, err, "")
		}
	})
	t.Run("none", func(t *testing.T) {
		none := mercureToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, subscribeClaims(nil))
		for _, v := range []*MercureVerifier{hs, rs} {
			_, err := v.Verify(none)
			wantRefused(t, err, "")
		}
		// Hand-made variants: other spellings, and a signature left on.
		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"mercure":{"publish":["*"]}}`))
		for _, h := range []string{`{"alg":"none"}`, `{"alg":"None","typ":"JWT"}`, `{"alg":"NONE"}`, `{"typ":"JWT"}`} {
			head := base64.RawURLEncoding.EncodeToString([]byte(h))
			for _, tok := range []string{head + "." + payload + ".", head + "." + payload + ".c2ln"} {
				_, err := hs.Verify(tok)
				wantRefused(t, err, "")
			}
		}
	})
	t.Run("ES256 token for an RS256 key", func(t *testing.T) {
		_, err := rs.Verify(mercureToken(t, jwt.SigningMethodES256, k.ec256, nil, subscribeClaims(nil)))
		wantRefused(t, err, "")
	})
}

func TestMercureVerifyClaims(t *testing.T) {
	k := mercureKeyring(t)
	secret := []byte(k.secret32)
	now := time.Now()
	plain := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}}).Subscriber
	strict := newTestMercureAuth(t, MercureAuthConfig{
		SubscriberJWT: &MercureKeyConfig{Key: k.secret32},
		Issuer:        "https://auth.example.com",
		Audience:      "https://hub.example.com",
	}).Subscriber
	good := jwt.MapClaims{"iss": "https://auth.example.com", "aud": "https://hub.example.com"}
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		c := subscribeClaims(good)
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
		{"0.x without exp", plain, nil, subscribeClaims(nil), ""},
		{"expired", plain, nil, subscribeClaims(jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix()}), "expired"},
		{"expired within leeway", plain, nil, subscribeClaims(jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()}), ""},
		{"not valid yet", plain, nil, subscribeClaims(jwt.MapClaims{"nbf": now.Add(2 * time.Minute).Unix()}), "not valid yet"},
		{"nbf within leeway", plain, nil, subscribeClaims(jwt.MapClaims{"nbf": now.Add(10 * time.Second).Unix()}), ""},
		{"issued in the future", plain, nil, subscribeClaims(jwt.MapClaims{"iat": now.Add(2 * time.Minute).Unix()}), "future"},
		{"exp not a number", plain, nil, subscribeClaims(jwt.MapClaims{"exp": "tomorrow"}), "malformed"},
		{"issuer and audience", strict, nil, with(nil), ""},
		{"audience in an array", strict, nil, with(jwt.MapClaims{"aud": []string{"https://other.example.com", "https://hub.example.com"}}), ""},
		{"wrong issuer", strict, nil, with(jwt.MapClaims{"iss": "https://evil.example.com"}), "wrong issuer"},
		{"no issuer", strict, nil, with(jwt.MapClaims{"iss": nil}), "required claim missing"},
		{"wrong audience", strict, nil, with(jwt.MapClaims{"aud": "https://other.example.com"}), "wrong audience"},
		{"no audience", strict, nil, with(jwt.MapClaims{"aud": nil}), "required claim missing"},
		{"audience array without ours", strict, nil, with(jwt.MapClaims{"aud": []string{"https://other.example.com"}}), "wrong audience"},
		{"at+jwt", plain, map[string]any{"typ": "at+jwt"}, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}, ""},
		{"application/at+jwt", plain, map[string]any{"typ": "application/AT+JWT"}, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}, ""},
		{"at+jwt without exp", plain, map[string]any{"typ": "at+jwt"}, jwt.MapClaims{}, "without exp"},
		{"typ absent", plain, map[string]any{"typ": nil}, subscribeClaims(nil), ""},
		{"ID token", plain, map[string]any{"typ": "id_token+jwt"}, subscribeClaims(nil), "typ"},
		{"typ not a string", plain, map[string]any{"typ": 7}, subscribeClaims(nil), "typ"},
		{"crit", plain, map[string]any{"crit": []string{"exp"}}, subscribeClaims(nil), "critical"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.v.Verify(mercureToken(t, jwt.SigningMethodHS256, secret, c.header, c.claims))
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

func TestMercureVerifyLimits(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}, MaxTokenSize: 512}).Subscriber
	long := subscribeClaims(jwt.MapClaims{"pad": strings.Repeat("x", 600)})
	_, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), nil, long))
	wantRefused(t, err, "larger than 512 bytes")
	for _, tok := range []string{"", "abc", "a.b", "a.b.c.d", "....", "ey.ey.ey"} {
		_, err := v.Verify(tok)
		wantRefused(t, err, "")
	}
}

// The clock is the verifier's: a token valid now is refused an hour later.
func TestMercureVerifyClock(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}, Leeway: new(caddy.Duration)}).Subscriber
	tok := mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), nil, subscribeClaims(jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()}))
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return time.Now().Add(time.Hour) }
	_, err := v.Verify(tok)
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
			if _, err := v.Verify(c.tok); err != nil {
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
		{"documentation secret", pub(mercureExampleSecret, ""), "example secret"},
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("MERCURE_TEST_UNSET_VARIABLE", "")
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

func durationPtr(d time.Duration) *caddy.Duration {
	c := caddy.Duration(d)
	return &c
}

// Errors are safe to show: no token content, no key.
func TestMercureErrorsAreSafe(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}}).Subscriber
	tok := mercureToken(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 32)), nil, subscribeClaims(jwt.MapClaims{"sub": "secret-subject"}))
	_, err := v.Verify(tok)
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
