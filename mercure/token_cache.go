package mercure

import (
	"strings"
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
	entries  map[verifiedKey]verifiedToken
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
	return &verifiedTokens{entries: map[verifiedKey]verifiedToken{}, maxBytes: maxBytes}
}

// verifiedKey is a cache key: a pair, not the two joined, so that
// looking a token up allocates nothing (a publisher's token, hundreds of
// bytes, was copied on every POST).
type verifiedKey struct{ resource, token string }

func (k verifiedKey) size() int { return len(k.resource) + 1 + len(k.token) }

func verifiedTokenKey(resource, token string) verifiedKey {
	return verifiedKey{resource, token}
}

// get returns the grant verified for key, if it is still trusted at now.
func (c *verifiedTokens) get(key verifiedKey, now time.Time) *MercureGrant {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		delete(c.entries, key)
		c.bytes -= key.size()
		return nil
	}
	return e.grant
}

// put keeps g, verified at now, for key.
func (c *verifiedTokens) put(key verifiedKey, g *MercureGrant, now time.Time) {
	until := now.Add(verifiedTokenTTL)
	if !g.Expires.IsZero() && g.Expires.Before(until) {
		until = g.Expires
	}
	if !now.Before(until) || key.size() > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	if c.bytes+key.size() > c.maxBytes {
		clear(c.entries)
		c.bytes = 0
	}
	// Copies: the token may be a slice of a larger header (a Cookie),
	// which the cache's byte count would not see.
	key = verifiedKey{strings.Clone(key.resource), strings.Clone(key.token)}
	c.entries[key] = verifiedToken{grant: g, until: until}
	c.bytes += key.size()
}
