package mercure

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A remembered verification is as strict as a fresh one: the grant is the
// same, another resource identifier still fails aud, a token refused is
// refused again, and nothing outlives the token's exp.
func TestMercureVerifiedTokensKeepTheChecks(t *testing.T) {
	k := mercureKeyring(t)
	a := newTestMercureAuth(t, modernConfig(k.secret32))
	v := a.Subscriber
	clock := time.Now()
	v.now = func() time.Time { return clock }
	v.parser = jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return clock }), jwt.WithLeeway(0))

	tok := mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), atHeader,
		accessClaims(jwt.MapClaims{"exp": clock.Add(30 * time.Second).Unix()}))
	first, err := v.Verify(tok, testResource)
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.Verify(tok, testResource)
	if err != nil || again != first {
		t.Fatalf("second verification: %v, grant %p want the remembered %p", err, again, first)
	}
	// The aud check depends on the resource: no entry for another one.
	if _, err := v.Verify(tok, "https://other.example/.well-known/mercure"); err == nil {
		t.Error("a token remembered for one resource identifier passed for another")
	}
	// Refusals are not remembered as successes.
	bad := tok[:len(tok)-2] + "xx"
	for range 2 {
		if _, err := v.Verify(bad, testResource); err == nil {
			t.Fatal("a tampered token verified")
		}
	}
	// exp ends the entry: past it the token is verified again, and refused.
	clock = clock.Add(31 * time.Second)
	if _, err := v.Verify(tok, testResource); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("after exp: %v, want expired", err)
	}
}

// Entries last verifiedTokenTTL at most, and the cache holds at most its
// bytes: when full it starts over.
func TestVerifiedTokensBounds(t *testing.T) {
	now := time.Now()
	g := &MercureGrant{}
	c := newVerifiedTokens(100)
	key := func(token string) verifiedKey { return verifiedTokenKey("", token) }
	c.put(key("a"), g, now)
	if c.get(key("a"), now.Add(verifiedTokenTTL-time.Second)) != g {
		t.Fatal("an entry was lost within its TTL")
	}
	if c.get(key("a"), now.Add(verifiedTokenTTL)) != nil {
		t.Fatal("an entry outlived verifiedTokenTTL")
	}
	expiring := &MercureGrant{Expires: now.Add(time.Second)}
	c.put(key("b"), expiring, now)
	if c.get(key("b"), now.Add(time.Second)) != nil {
		t.Fatal("an entry outlived its token's exp")
	}
	for i := range 50 {
		c.put(key(strings.Repeat("k", 10)+string(rune('a'+i%26))+string(rune('a'+i/26))), g, now)
		if c.bytes > c.maxBytes {
			t.Fatalf("%d bytes held, at most %d", c.bytes, c.maxBytes)
		}
	}
	c.put(key(strings.Repeat("x", 101)), g, now)
	if c.get(key(strings.Repeat("x", 101)), now) != nil {
		t.Fatal("a key larger than the cache was kept")
	}
}
