package mercure

import (
	"sync"
	"time"
)

// verifiedTokens remembers the grants of tokens a verifier accepted
// recently. Publishers send the same token with every POST (client
// libraries mint one and reuse it until it expires), and verifying it is
// the largest cost of a Mercure publish after the write itself: the
// signature, then JSON decoding of authorization_details (15% of the
// server's CPU in the publish benchmark). With the cache a publisher's
// token is verified about once a minute.
//
// What is kept cannot outlive what was checked:
//   - the key is the resource identifier and the token's exact bytes (the
//     aud check depends on the resource; any change of the token is another
//     key);
//   - an entry lives until the token's exp or verifiedTokenTTL after its
//     verification, whichever comes first, so a key rotated away (a JWKS
//     refresh, a config reload builds a new verifier anyway) stops
//     accepting its tokens within that time;
//   - only successes are kept: a refused token is verified again each time
//     (an attacker's garbage cannot fill the cache);
//   - the cache is bounded by the bytes of the tokens it holds; when full
//     it is emptied and starts over (a flood of distinct valid tokens
//     needs the keys, and costs at worst what no cache costs).
//
// A grant is immutable once verified, so one is shared by the requests
// that present its token.
type verifiedTokens struct {
	mu       sync.Mutex
	entries  map[string]verifiedToken
	bytes    int
	maxBytes int
}

type verifiedToken struct {
	grant *MercureGrant
	until time.Time
}

// verifiedTokenTTL bounds how long a verification is trusted.
const verifiedTokenTTL = time.Minute

// defaultVerifiedTokensBytes bounds a verifier's cache: 4 MiB of tokens
// (some 4,000 tokens of 1 KiB).
const defaultVerifiedTokensBytes = 4 << 20

func newVerifiedTokens(maxBytes int) *verifiedTokens {
	return &verifiedTokens{entries: map[string]verifiedToken{}, maxBytes: maxBytes}
}

func verifiedTokenKey(resource, token string) string {
	return resource + "\x00" + token
}

// get returns the grant verified for key, if it is still trusted at now.
func (c *verifiedTokens) get(key string, now time.Time) *MercureGrant {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		delete(c.entries, key)
		c.bytes -= len(key)
		return nil
	}
	return e.grant
}

// put keeps g, verified at now, for key.
func (c *verifiedTokens) put(key string, g *MercureGrant, now time.Time) {
	until := now.Add(verifiedTokenTTL)
	if !g.Expires.IsZero() && g.Expires.Before(until) {
		until = g.Expires
	}
	if !now.Before(until) || len(key) > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	if c.bytes+len(key) > c.maxBytes {
		clear(c.entries)
		c.bytes = 0
	}
	c.entries[key] = verifiedToken{grant: g, until: until}
	c.bytes += len(key)
}
