package mercure

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// Mercure token verification (the spec's "Authorization", "Token
// Validation" and "Authorization Details" sections; docs/UPGRADE.md for
// compatibility mode).
//
// Every check that decides whether a token is genuine is done by
// github.com/golang-jwt/jwt/v5 (signature, exp, nbf, the algorithm
// allowlist) and, for a key set, github.com/MicahParks/keyfunc/v3: this
// file chooses the key by the token's issuer, checks typ, iss and aud, and
// turns what is accepted into a MercureGrant (grant.go).
//
// Modern mode (the default, Mercure 1.0):
//
//   - typ must be at+jwt (or application/at+jwt, case-insensitive);
//   - iss must be one of the configured issuers, and the token is verified
//     only with that issuer's key for the role (keys are never pooled
//     across issuers, so one issuer cannot sign under another's name);
//   - aud must contain the hub's resource identifier (pinned with
//     resource_identifier, else derived from the request, see
//     metadata.go);
//   - exp is required; nbf is enforced when present; iat is not checked
//     (Mercure does not check it, and a clock ahead of ours must not
//     refuse a fresh token);
//   - rights come from authorization_details only.
//
// Compatibility mode (protocol_version_compatibility 8) also accepts what
// Mercure 0.24.2 accepts: tokens without typ (or typ JWT), aud, exp or a
// matching iss, and the 0.x claims (mercure, https://mercure.rocks/). As in
// Mercure, the typ, iss, aud and exp requirements are dropped for every
// token in that mode; exp and nbf are still enforced when present. A token
// whose iss names a configured issuer is verified with that issuer's key;
// any other with the implicit issuer's (the top-level publisher_jwt,
// subscriber_jwt, jwks_url...), or, when there is none and exactly one
// issuer is configured, with that one's.
//
// Any typ other than at+jwt and JWT (an OpenID Connect ID token, a logout
// token...) is refused in both modes: it was issued for something else.

// Limits and defaults of token verification.
const (
	// mercureDefaultLeeway absorbs clock skew between the token issuer and
	// this server on exp and nbf. It also lengthens every token's life by
	// as much, hence the cap.
	mercureDefaultLeeway = 30 * time.Second
	mercureMaxLeeway     = 5 * time.Minute

	// mercureDefaultMaxTokenSize bounds a token before it is decoded: a
	// large token is parsed (base64 and JSON) before its signature can be
	// checked, so anonymous clients must not choose its size. 64KiB holds
	// a token with 100 authorization details of a few topics each.
	mercureDefaultMaxTokenSize = 64 << 10

	// mercureDefaultMaxDetails bounds the Mercure authorization details of
	// one token, and mercureDefaultMaxTopics the topic matchers of one
	// detail (and each 0.x claim list). Tokens over a limit are refused
	// (401 invalid_token), as the spec demands, never truncated.
	mercureDefaultMaxDetails = 100
	mercureDefaultMaxTopics  = 100

	// mercureDefaultMaxSelectorLength bounds each topic matcher of a
	// token, in bytes: as the subscribe query's matchers.
	mercureDefaultMaxSelectorLength = 4096

	// mercureMinRSABits: RSA keys under 2048 bits are refused (NIST SP
	// 800-57; RFC 7518 section 3.3 requires 2048 too).
	mercureMinRSABits = 2048
)

// mercureAuthorizationDetailType is the type of a Mercure authorization
// detail, compared byte by byte.
const mercureAuthorizationDetailType = "https://mercure.rocks/authorization-detail"

// mercureExampleSecret is the HMAC key printed in Mercure's documentation,
// its quickstart and framework skeletons (and `mercure-token --dev`).
// Anyone can sign tokens with it: a hub configured with it is open to
// everyone, which is logged loudly at load. It is not refused, so that
// Mercure's quickstart and conformance suite work unchanged.
const mercureExampleSecret = "!ChangeThisMercureHubJWTSecretKey!"

// MercureAuthConfig is the token configuration of a Mercure route. It is
// meant to be embedded in the sse_mercure handler's JSON config.
//
// Keys belong to issuers (Issuers, Mercure's `issuer <iss> { ... }`
// blocks): a token is verified only with the key of the issuer its iss
// names, for the role it is presented in (publisher or subscriber).
//
// The top-level keys (PublisherJWT, SubscriberJWT, JWKSURL,
// PublisherJWKSURL, SubscriberJWKSURL) form one more issuer: with Issuer
// set, the issuer of that name; without, Mercure's "implicit issuer",
// accepted only in compatibility mode (it checks no iss).
type MercureAuthConfig struct {
	// Issuers are the trusted token issuers, each with its keys.
	Issuers []MercureIssuerConfig `json:"issuers,omitempty"`

	// ResourceIdentifier pins the hub's OAuth resource identifier: the
	// value tokens must carry in aud, and the resource of the protected
	// resource metadata. An absolute http(s) URL is also the base that
	// relative topics and URL patterns resolve against. Default: derived
	// from each request, scheme://host/.well-known/mercure.
	ResourceIdentifier string `json:"resource_identifier,omitempty"`

	// PublisherJWT verifies the tokens of publishers (top-level key).
	PublisherJWT *MercureKeyConfig `json:"publisher_jwt,omitempty"`
	// SubscriberJWT verifies the tokens of subscribers (top-level key).
	SubscriberJWT *MercureKeyConfig `json:"subscriber_jwt,omitempty"`
	// PublisherJWKSURL and SubscriberJWKSURL are key sets for one role
	// (Mercure's publisher_jwks_url, subscriber_jwks_url).
	PublisherJWKSURL  string `json:"publisher_jwks_url,omitempty"`
	SubscriberJWKSURL string `json:"subscriber_jwks_url,omitempty"`
	// JWKSURL is a JSON Web Key Set (RFC 7517) for the top-level roles
	// that have no key of their own.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Issuer names the issuer of the top-level keys: tokens they verify
	// must carry this iss (in modern mode; in compatibility mode a token
	// without it falls back to them, as Mercure's implicit issuer).
	Issuer string `json:"issuer,omitempty"`
	// Audience is the former name of ResourceIdentifier.
	Audience string `json:"audience,omitempty"`

	// JWKSRefresh is how often key sets are fetched again in the
	// background. Default: 1h.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`
	// JWKSUnknownKIDInterval is the least time between two fetches of a
	// key set caused by tokens whose kid is not in it (a key rotated in
	// since the last refresh). Default: 5m.
	JWKSUnknownKIDInterval caddy.Duration `json:"jwks_unknown_kid_interval,omitempty"`

	// Leeway is the clock skew tolerated on exp and nbf. Default 30s, at
	// most 5m.
	Leeway *caddy.Duration `json:"leeway,omitempty"`

	// CookieName replaces the default cookie name
	// (__Secure-mercure_access_token; in compatibility mode also
	// mercureAuthorization).
	CookieName string `json:"cookie_name,omitempty"`

	// PublishOrigins are the origins, besides the hub's own, from which a
	// browser may publish with the cookie (CSRF protection, see
	// CheckCookieOrigin). "*" is not accepted.
	PublishOrigins []string `json:"publish_origins,omitempty"`

	// MaxTokenSize bounds a token, in bytes. Default 64KiB.
	MaxTokenSize int `json:"max_token_size,omitempty"`
	// MaxTokenDetails bounds the Mercure authorization details of a
	// token. Default 100.
	MaxTokenDetails int `json:"max_token_details,omitempty"`
	// MaxTokenTopics bounds the topic matchers of one authorization
	// detail (and of each 0.x claim list). Default 100.
	MaxTokenTopics int `json:"max_token_topics,omitempty"`
	// MaxTokenSelectors bounds the topic matchers of a whole token.
	// Default: max_token_details × max_token_topics.
	MaxTokenSelectors int `json:"max_token_selectors,omitempty"`
	// MaxSelectorLength bounds each topic matcher of a token, in bytes.
	// Default 4096.
	MaxSelectorLength int `json:"max_selector_length,omitempty"`

	// compat is the handler's compatibility mode.
	compat bool
}

// MercureIssuerConfig is one trusted issuer: Mercure's
// `issuer <iss> { publisher { ... } subscriber { ... } authorization_server }`.
type MercureIssuerConfig struct {
	// Issuer is the iss value the tokens carry, compared exactly.
	Issuer string `json:"issuer"`
	// AuthorizationServer advertises this issuer in the protected resource
	// metadata's authorization_servers.
	AuthorizationServer bool `json:"authorization_server,omitempty"`
	// Publisher and Subscriber verify each role's tokens; a role without
	// one accepts no token of this issuer.
	Publisher  *MercureVerifierConfig `json:"publisher,omitempty"`
	Subscriber *MercureVerifierConfig `json:"subscriber,omitempty"`
}

// MercureVerifierConfig is one role's key: a key (JWT) or a key set
// (JWKSURI), not both.
type MercureVerifierConfig struct {
	JWT *MercureKeyConfig `json:"jwt,omitempty"`
	// JWKSURI is an https URL (http on a loopback host) of a JSON Web Key
	// Set, refreshed in the background, or a file:// URL read at load.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Algorithms restricts what the key set may verify. Default: every
	// asymmetric algorithm (RS*, PS*, ES*, EdDSA).
	Algorithms []string `json:"algorithms,omitempty"`
}

// MercureKeyConfig is the verification key of one role: the Caddyfile's
// `jwt <key> [<alg>]` (or `publisher_jwt <key> [<alg>]`).
//
// Key is either an HMAC secret, used as its bytes (HS256, HS384, HS512),
// or a PEM public key or certificate (a value starting with "-----BEGIN"):
// RSA for RS*/PS*, ECDSA for ES*, Ed25519 for EdDSA. Caddy's global
// placeholders are expanded at load: `{env.MERCURE_PUBLISHER_JWT_KEY}`,
// `{file./etc/mercure/publisher.pem}`; one that is unknown or empty is an
// error (write a literal brace as `\{`). KeyFile names a file holding the
// key instead (one trailing newline is dropped); give one of the two.
//
// Alg defaults to HS256 for a secret, and to the key's own algorithm for a
// PEM (RS256, ES256/384/512 by curve, EdDSA). It may be a placeholder that
// expands to nothing (Mercure's `{env.MERCURE_PUBLISHER_JWT_ALG}`), which
// means the default. HMAC secrets must be at least as long as the hash:
// 32 bytes for HS256, 48 for HS384, 64 for HS512 (RFC 7518 section 3.2).
// A private key is refused: the hub only verifies, it must not be able to
// sign.
type MercureKeyConfig struct {
	Key     string `json:"key,omitempty"`
	KeyFile string `json:"key_file,omitempty"`
	Alg     string `json:"alg,omitempty"`
}

// MercureRole is who presents a token.
type MercureRole int

const (
	MercurePublisher MercureRole = iota
	MercureSubscriber
)

func (r MercureRole) String() string {
	if r == MercurePublisher {
		return "publisher"
	}
	return "subscriber"
}

// MercureAuth verifies the tokens of one Mercure route. It is safe for
// concurrent use. Close stops its key set refreshes (the handler's
// Cleanup).
type MercureAuth struct {
	// Publisher and Subscriber verify each role's tokens; nil when no
	// issuer has a key for the role.
	Publisher  *MercureVerifier
	Subscriber *MercureVerifier

	compat         bool
	resource       string   // pinned resource identifier, "" when derived
	authServers    []string // issuers advertised in the metadata
	cookieNames    []string
	publishOrigins map[string]bool
	cancel         context.CancelFunc
}

// mercureIssuerKey is one issuer's key for one role.
type mercureIssuerKey struct {
	issuer  string // "" for the implicit issuer
	algs    []string
	keyFunc jwt.Keyfunc
	// static: the key is fixed for the verifier's life (jwt <key>), so
	// a token it verified may be remembered (token_cache.go). A
	// key set's keys are not: one removed at a refresh must stop
	// verifying at once.
	static bool
}

// MercureVerifier verifies the tokens of one role.
type MercureVerifier struct {
	role     MercureRole
	compat   bool
	byIssuer map[string]*mercureIssuerKey
	// fallback verifies, in compatibility mode only, tokens whose iss
	// names no configured issuer: the implicit issuer's key, or the only
	// issuer's.
	fallback *mercureIssuerKey
	parser   *jwt.Parser
	limits   mercureClaimLimits
	maxSize  int
	now      func() time.Time // time.Now; tests move it
	// verified remembers recent successes (token_cache.go).
	verified *verifiedTokens
}

// NewMercureAuth checks cfg and builds the verifiers. Errors name the
// option at fault and never contain key material. ctx bounds the key set
// refreshes (the handler passes its caddy.Context, which ends when the
// config is unloaded); Close ends them sooner. logger (nil: none) gets the
// key set fetch failures and the example-secret warning.
func NewMercureAuth(ctx context.Context, cfg MercureAuthConfig, logger *zap.Logger) (*MercureAuth, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	leeway := mercureDefaultLeeway
	if cfg.Leeway != nil {
		leeway = time.Duration(*cfg.Leeway)
		if leeway < 0 || leeway > mercureMaxLeeway {
			return nil, fmt.Errorf("leeway: %s is not between 0 and %s (it lengthens every token's life)", leeway, mercureMaxLeeway)
		}
	}
	for _, o := range []struct {
		name string
		v    int
	}{{"max_token_size", cfg.MaxTokenSize}, {"max_token_details", cfg.MaxTokenDetails}, {"max_token_topics", cfg.MaxTokenTopics},
		{"max_token_selectors", cfg.MaxTokenSelectors}, {"max_selector_length", cfg.MaxSelectorLength}} {
		if o.v < 0 {
			return nil, fmt.Errorf("%s: %d is negative", o.name, o.v)
		}
	}
	limits := cfg.claimLimits()
	maxSize := orDefault(cfg.MaxTokenSize, mercureDefaultMaxTokenSize)

	resource, err := cfg.resourceIdentifier()
	if err != nil {
		return nil, err
	}
	a := &MercureAuth{compat: cfg.compat, resource: resource, cookieNames: mercureCookieNames(cfg.CookieName, cfg.compat)}
	if cfg.CookieName != "" && !validCookieName(cfg.CookieName) {
		return nil, fmt.Errorf("cookie_name: %q is not a cookie name (RFC 6265 token characters)", hub.Truncate(cfg.CookieName, 64))
	}
	if a.publishOrigins, err = parsePublishOrigins(cfg.PublishOrigins); err != nil {
		return nil, err
	}
	issuers, err := cfg.allIssuers()
	if err != nil {
		return nil, err
	}
	for _, is := range issuers {
		if is.AuthorizationServer {
			a.authServers = append(a.authServers, is.Issuer)
		}
	}

	ctx, a.cancel = context.WithCancel(ctx)
	fail := func(err error) (*MercureAuth, error) {
		a.cancel()
		return nil, err
	}
	sets := map[string]*mercureJWKS{} // one fetcher per key set URL
	for _, role := range []MercureRole{MercurePublisher, MercureSubscriber} {
		v := &MercureVerifier{role: role, compat: cfg.compat, byIssuer: map[string]*mercureIssuerKey{},
			limits: limits, maxSize: maxSize, now: time.Now, verified: newVerifiedTokens(defaultVerifiedTokensBytes)}
		var implicit *mercureIssuerKey
		algs := map[string]bool{}
		for _, is := range issuers {
			vc := is.Publisher
			if role == MercureSubscriber {
				vc = is.Subscriber
			}
			if vc == nil {
				continue
			}
			option := is.option(role)
			k, warn, err := buildIssuerKey(ctx, option, is.Issuer, *vc, cfg, sets, logger)
			if err != nil {
				return fail(err)
			}
			if warn {
				logger.Warn("sse_mercure: "+option+" uses the example secret from Mercure's documentation; anyone can sign tokens with it: choose your own key outside development",
					zap.String("issuer", is.Issuer))
			}
			for _, alg := range k.algs {
				algs[alg] = true
			}
			if is.Issuer == "" {
				implicit = k
			} else {
				v.byIssuer[is.Issuer] = k
			}
		}
		if len(algs) == 0 {
			continue
		}
		switch {
		case implicit != nil:
			v.fallback = implicit
		case len(v.byIssuer) == 1:
			for _, k := range v.byIssuer {
				v.fallback = k
			}
		}
		allowed := make([]string, 0, len(algs))
		for alg := range algs {
			allowed = append(allowed, alg)
		}
		sort.Strings(allowed)
		// exp and nbf are checked by the parser (when present; exp is
		// required below in modern mode). iat is not checked: Mercure does
		// not, and an issuer whose clock is ahead must not be refused.
		v.parser = jwt.NewParser(jwt.WithLeeway(leeway), jwt.WithStrictDecoding(), jwt.WithValidMethods(allowed),
			jwt.WithTimeFunc(func() time.Time { return v.now() }))
		if role == MercurePublisher {
			a.Publisher = v
		} else {
			a.Subscriber = v
		}
	}
	return a, nil
}

// claimLimits are the token limits with their defaults.
func (cfg MercureAuthConfig) claimLimits() mercureClaimLimits {
	l := mercureClaimLimits{
		maxDetails: orDefault(cfg.MaxTokenDetails, mercureDefaultMaxDetails),
		maxTopics:  orDefault(cfg.MaxTokenTopics, mercureDefaultMaxTopics),
		maxLength:  orDefault(cfg.MaxSelectorLength, mercureDefaultMaxSelectorLength),
	}
	l.maxSelectors = orDefault(cfg.MaxTokenSelectors, l.maxDetails*l.maxTopics)
	return l
}

// resourceIdentifier is the pinned resource identifier (resource_identifier,
// or its former name audience), "" when it is derived per request.
func (cfg MercureAuthConfig) resourceIdentifier() (string, error) {
	r := cfg.ResourceIdentifier
	switch {
	case r != "" && cfg.Audience != "" && r != cfg.Audience:
		return "", errors.New("resource_identifier and audience (its former name) are both set, to different values; keep resource_identifier")
	case r == "":
		r = cfg.Audience
	}
	if r != "" {
		if err := checkResourceIdentifier(r); err != nil {
			return "", err
		}
	}
	return r, nil
}

// hasTopLevelKeys reports keys given outside an issuer block.
func (cfg MercureAuthConfig) hasTopLevelKeys() bool {
	return cfg.PublisherJWT != nil || cfg.SubscriberJWT != nil || cfg.JWKSURL != "" ||
		cfg.PublisherJWKSURL != "" || cfg.SubscriberJWKSURL != ""
}

// HasPublisherKey reports whether some issuer can verify publishers: without
// one no update can be published, a configuration error.
func (cfg MercureAuthConfig) HasPublisherKey() bool {
	if cfg.PublisherJWT != nil || cfg.JWKSURL != "" || cfg.PublisherJWKSURL != "" {
		return true
	}
	for _, is := range cfg.Issuers {
		if is.Publisher != nil {
			return true
		}
	}
	return false
}

// allIssuers is Issuers plus the issuer the top-level keys form: named
// cfg.Issuer, or the implicit issuer (named "") that only compatibility
// mode accepts.
func (cfg MercureAuthConfig) allIssuers() ([]MercureIssuerConfig, error) {
	seen := map[string]bool{}
	for i, is := range cfg.Issuers {
		switch {
		case is.Issuer == "":
			return nil, fmt.Errorf("issuers[%d]: give the issuer identifier (the iss of its tokens)", i)
		case seen[is.Issuer]:
			return nil, fmt.Errorf("issuer %q is declared twice; give each issuer one block", hub.Truncate(is.Issuer, 128))
		case is.Publisher == nil && is.Subscriber == nil:
			return nil, fmt.Errorf("issuer %q: give a publisher or subscriber key (jwt or jwks_uri)", hub.Truncate(is.Issuer, 128))
		}
		seen[is.Issuer] = true
	}
	out := append([]MercureIssuerConfig(nil), cfg.Issuers...)
	if !cfg.hasTopLevelKeys() {
		if cfg.Issuer != "" {
			return nil, errors.New("issuer: the one-argument form names the issuer of publisher_jwt/subscriber_jwt/jwks_url; give those keys, or use a block: issuer <iss> { publisher { jwt <key> } }")
		}
		return out, nil
	}
	if cfg.Issuer == "" && !cfg.compat {
		return nil, errors.New("publisher_jwt, subscriber_jwt, jwks_url, publisher_jwks_url and subscriber_jwks_url outside an issuer block form Mercure's implicit issuer, " +
			"which only compatibility mode accepts (it checks neither typ, iss, aud nor exp). Move the keys into an issuer block " +
			"(issuer <iss> { publisher { jwt <key> } subscriber { jwt <key> } }), name their issuer (issuer <iss>), or add protocol_version_compatibility 8")
	}
	if seen[cfg.Issuer] {
		return nil, fmt.Errorf("issuer %q has a block and top-level keys; put its keys in one place", hub.Truncate(cfg.Issuer, 128))
	}
	top := MercureIssuerConfig{Issuer: cfg.Issuer}
	role := func(kc *MercureKeyConfig, roleURL string) (*MercureVerifierConfig, error) {
		switch {
		case kc != nil && roleURL != "":
			return nil, errors.New("a role has both a key (publisher_jwt/subscriber_jwt) and a key set (publisher_jwks_url/subscriber_jwks_url); give one")
		case kc != nil:
			return &MercureVerifierConfig{JWT: kc}, nil
		case roleURL != "":
			return &MercureVerifierConfig{JWKSURI: roleURL}, nil
		case cfg.JWKSURL != "":
			return &MercureVerifierConfig{JWKSURI: cfg.JWKSURL}, nil
		}
		return nil, nil
	}
	var err error
	if top.Publisher, err = role(cfg.PublisherJWT, cfg.PublisherJWKSURL); err != nil {
		return nil, err
	}
	if top.Subscriber, err = role(cfg.SubscriberJWT, cfg.SubscriberJWKSURL); err != nil {
		return nil, err
	}
	if cfg.JWKSURL != "" && (cfg.PublisherJWT != nil || cfg.PublisherJWKSURL != "") && (cfg.SubscriberJWT != nil || cfg.SubscriberJWKSURL != "") {
		return nil, errors.New("jwks_url: both roles have a key of their own, so the key set would never be used; remove it or one of them")
	}
	return append(out, top), nil
}

// option names an issuer's role key in errors.
func (is MercureIssuerConfig) option(role MercureRole) string {
	if is.Issuer == "" {
		return role.String() + "_jwt"
	}
	return fmt.Sprintf("issuer %s %s", hub.Truncate(is.Issuer, 128), role)
}

// buildIssuerKey loads one issuer's key for one role. warn reports
// Mercure's example secret.
func buildIssuerKey(ctx context.Context, option, issuer string, vc MercureVerifierConfig, cfg MercureAuthConfig,
	sets map[string]*mercureJWKS, logger *zap.Logger) (k *mercureIssuerKey, warn bool, err error) {
	k = &mercureIssuerKey{issuer: issuer}
	switch {
	case vc.JWT != nil && vc.JWKSURI != "":
		return nil, false, fmt.Errorf("%s: give jwt or jwks_uri, not both", option)
	case vc.JWT != nil:
		if len(vc.Algorithms) > 0 {
			return nil, false, fmt.Errorf("%s: algorithms go with jwks_uri; give jwt's algorithm after its key", option)
		}
		alg, key, example, err := loadMercureKey(option, *vc.JWT)
		if err != nil {
			return nil, false, err
		}
		k.algs = []string{alg}
		k.keyFunc = func(*jwt.Token) (any, error) { return key, nil }
		k.static = true
		return k, example, nil
	case vc.JWKSURI != "":
		k.algs = mercureJWKSAlgs
		if len(vc.Algorithms) > 0 {
			for _, alg := range vc.Algorithms {
				if !containsString(mercureJWKSAlgs, alg) {
					return nil, false, fmt.Errorf("%s: jwks_uri algorithm %q is not one of %s (a key set verifies asymmetric signatures only)",
						option, hub.Truncate(alg, 32), strings.Join(mercureJWKSAlgs, ", "))
				}
			}
			k.algs = append([]string(nil), vc.Algorithms...)
		}
		set := sets[vc.JWKSURI]
		if set == nil {
			if set, err = newMercureJWKS(ctx, vc.JWKSURI, cfg, logger); err != nil {
				return nil, false, fmt.Errorf("%s: %v", option, err)
			}
			sets[vc.JWKSURI] = set
		}
		k.keyFunc = set.keyFunc
		return k, false, nil
	}
	return nil, false, fmt.Errorf("%s: give jwt <key> [<alg>] or jwks_uri <url>", option)
}

// Close stops the key set refreshes. It is safe to call more than once.
func (a *MercureAuth) Close() {
	if a != nil && a.cancel != nil {
		a.cancel()
	}
}

// Verifier returns the verifier of a role, nil when it has no key.
func (a *MercureAuth) Verifier(role MercureRole) *MercureVerifier {
	if role == MercurePublisher {
		return a.Publisher
	}
	return a.Subscriber
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// ErrMercureInvalidToken is wrapped by every error of Verify: the handler
// answers 401 with error="invalid_token", the same for every reason, as the
// protocol asks (so that the answer does not tell an attacker which check
// failed). The reason is for logs.
var ErrMercureInvalidToken = errors.New("invalid_token")

// MercureTokenError is why a token was refused. Reason is a short phrase
// ("expired", "bad signature", "authorization_details[1]: unknown
// match_type \"x\""...): safe to log, it never carries key material nor
// the token, and quotes at most a few bytes of a malformed claim.
type MercureTokenError struct {
	Reason string
	err    error // the library's error, for errors.Is (jwt.ErrTokenExpired...)
}

func (e *MercureTokenError) Error() string { return "invalid token: " + e.Reason }

// Unwrap lets errors.Is find ErrMercureInvalidToken and the jwt package's
// sentinel errors.
func (e *MercureTokenError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrMercureInvalidToken}
	}
	return []error{ErrMercureInvalidToken, e.err}
}

func tokenErr(reason string, err error) error { return &MercureTokenError{Reason: reason, err: err} }

// mercureClaims are the claims read from a token. Registered claims are
// checked by the jwt parser (exp, nbf) and by Verify (iss, aud); the
// Mercure ones are decoded later, by shape.
type mercureClaims struct {
	jwt.RegisteredClaims
	AuthorizationDetails json.RawMessage `json:"authorization_details"`
	Mercure              json.RawMessage `json:"mercure"`
	MercureNamespaced    json.RawMessage `json:"https://mercure.rocks/"`
}

// Verify checks a token for the hub whose resource identifier is resource
// and returns what it grants. A valid token that grants nothing gives an
// empty grant, not an error (it may still subscribe to public updates;
// Grant.Shape says why it grants nothing). Every error wraps
// ErrMercureInvalidToken and is a *MercureTokenError.
//
// A nil verifier (a role without a key) refuses every token.
func (v *MercureVerifier) Verify(token, resource string) (*MercureGrant, error) {
	if v == nil {
		return nil, tokenErr("no key is configured for this role", nil)
	}
	if token == "" {
		return nil, tokenErr("empty", nil)
	}
	if len(token) > v.maxSize {
		return nil, tokenErr(fmt.Sprintf("larger than %d bytes (max_token_size)", v.maxSize), nil)
	}
	cacheKey, now := verifiedTokenKey(resource, token), v.now()
	if v.verified != nil {
		if g := v.verified.get(cacheKey, now); g != nil {
			return g, nil
		}
	}
	var claims mercureClaims
	var why error // a refusal decided while choosing the key
	var accessToken bool
	var key *mercureIssuerKey
	_, err := v.parser.ParseWithClaims(token, &claims, func(tok *jwt.Token) (any, error) {
		if _, ok := tok.Header["crit"]; ok {
			// RFC 7515 section 4.1.11: extensions marked critical must be
			// understood; this verifier understands none.
			why = tokenErr("critical header extension not supported", nil)
			return nil, why
		}
		if accessToken, why = mercureTokenType(tok.Header["typ"], v.compat); why != nil {
			return nil, why
		}
		if key, why = v.issuerKey(claims.Issuer); why != nil {
			return nil, why
		}
		if !containsString(key.algs, tok.Method.Alg()) {
			why = tokenErr(fmt.Sprintf("algorithm %s is not allowed for this issuer", hub.Truncate(tok.Method.Alg(), 16)), jwt.ErrTokenUnverifiable)
			return nil, why
		}
		return key.keyFunc(tok)
	})
	if err != nil {
		if why != nil {
			return nil, why
		}
		return nil, classifyJWTError(err)
	}
	if !v.compat {
		switch {
		case claims.ExpiresAt == nil:
			// RFC 9068 section 2.2 and the spec: exp is required.
			return nil, tokenErr("no exp (required)", jwt.ErrTokenRequiredClaimMissing)
		case !containsString(claims.Audience, resource):
			return nil, tokenErr(fmt.Sprintf("aud does not contain the resource identifier %q", hub.Truncate(resource, 128)), jwt.ErrTokenInvalidAudience)
		}
	}
	g := &MercureGrant{AccessToken: accessToken, Subject: claims.Subject, Issuer: claims.Issuer}
	if claims.ExpiresAt != nil {
		g.Expires = claims.ExpiresAt.Time
	}
	if err := g.fromClaims(&claims, v.compat, v.limits); err != nil {
		return nil, err
	}
	if v.verified != nil && key.static {
		v.verified.put(cacheKey, g, now)
	}
	return g, nil
}

// issuerKey chooses the key for a token's iss.
func (v *MercureVerifier) issuerKey(iss string) (*mercureIssuerKey, error) {
	if k := v.byIssuer[iss]; k != nil && iss != "" {
		return k, nil
	}
	if v.compat && v.fallback != nil {
		return v.fallback, nil
	}
	if iss == "" {
		return nil, tokenErr("no iss (required)", jwt.ErrTokenRequiredClaimMissing)
	}
	return nil, tokenErr(fmt.Sprintf("iss %q is not a trusted issuer for %ss", hub.Truncate(iss, 128), v.role), jwt.ErrTokenInvalidIssuer)
}

// mercureTokenType reads the JOSE "typ" header: true for an access token
// (at+jwt). A 0.x token (no typ, or JWT) is accepted only in
// compatibility mode. Media type names are case-insensitive and may omit
// "application/" (RFC 7515 section 4.1.9).
func mercureTokenType(h any, compat bool) (bool, error) {
	typ, ok := h.(string)
	if h != nil && !ok {
		return false, tokenErr("typ header is not a string", nil)
	}
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	switch {
	case t == "at+jwt":
		return true, nil
	case compat && (h == nil || t == "jwt"):
		return false, nil
	case !compat && (h == nil || t == "jwt"):
		return false, tokenErr("typ is not at+jwt (a 0.x token? those are accepted only with protocol_version_compatibility 8)", nil)
	}
	return false, tokenErr(fmt.Sprintf("typ %q is not at+jwt", hub.Truncate(typ, 32)), nil)
}

// classifyJWTError turns the jwt package's error into a fixed reason.
// The library's message is not shown: some wrap keyfunc errors that name
// the JWKS URL or a kid.
func classifyJWTError(err error) error {
	for _, c := range []struct {
		target error
		reason string
	}{
		{jwt.ErrTokenMalformed, "malformed"},
		{jwt.ErrTokenUnverifiable, "no usable key or algorithm not allowed"},
		{jwt.ErrTokenSignatureInvalid, "bad signature"},
		{jwt.ErrTokenExpired, "expired"},
		{jwt.ErrTokenNotValidYet, "not valid yet (nbf)"},
		{jwt.ErrTokenRequiredClaimMissing, "required claim missing"},
		{jwt.ErrTokenInvalidClaims, "invalid claims"},
	} {
		if errors.Is(err, c.target) {
			return tokenErr(c.reason, c.target)
		}
	}
	return tokenErr("rejected", nil)
}

// The algorithms a role may be configured with.
var (
	mercureHMACAlgs = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64} // minimum key bytes
	mercureRSAAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	mercureECAlgs   = map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}
)

// loadMercureKey resolves one role's key and algorithm, and checks that they
// belong together. The returned key is what the jwt package's signing
// method for alg verifies with: []byte, *rsa.PublicKey, *ecdsa.PublicKey
// or ed25519.PublicKey.
func loadMercureKey(option string, kc MercureKeyConfig) (alg string, key any, example bool, err error) {
	rep := caddy.NewReplacer()
	alg, err = rep.ReplaceOrErr(kc.Alg, false, true)
	if err != nil {
		return "", nil, false, fmt.Errorf("%s: algorithm: %v", option, err)
	}
	alg = strings.TrimSpace(alg)
	raw := kc.Key
	switch {
	case kc.Key != "" && kc.KeyFile != "":
		return "", nil, false, fmt.Errorf("%s: give the key or key_file, not both", option)
	case kc.KeyFile != "":
		b, err := os.ReadFile(kc.KeyFile)
		if err != nil {
			return "", nil, false, fmt.Errorf("%s: key_file: %v", option, err)
		}
		raw = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	case kc.Key == "":
		return "", nil, false, fmt.Errorf("%s: no key", option)
	default:
		// The error names the placeholder, never the value.
		if raw, err = rep.ReplaceOrErr(kc.Key, true, true); err != nil {
			return "", nil, false, fmt.Errorf("%s: key: %v", option, err)
		}
	}

	isPEM := strings.HasPrefix(strings.TrimSpace(raw), "-----BEGIN")
	if !isPEM {
		if alg == "" {
			alg = "HS256"
		}
		minLen, ok := mercureHMACAlgs[alg]
		switch {
		case ok && len(raw) < minLen:
			return "", nil, false, fmt.Errorf("%s: an %s secret must be at least %d bytes (RFC 7518 section 3.2); this one has %d", option, alg, minLen, len(raw))
		case ok:
			return alg, []byte(raw), raw == mercureExampleSecret, nil
		case knownMercureAlg(alg):
			return "", nil, false, fmt.Errorf("%s: %s needs a PEM public key (-----BEGIN PUBLIC KEY-----), not a secret", option, alg)
		}
		return "", nil, false, unknownAlgErr(option, alg)
	}

	pub, err := parseMercurePEM(raw)
	if err != nil {
		return "", nil, false, fmt.Errorf("%s: %v", option, err)
	}
	if alg == "" {
		if alg, err = defaultAlgFor(pub); err != nil {
			return "", nil, false, fmt.Errorf("%s: %v", option, err)
		}
	}
	if _, ok := mercureHMACAlgs[alg]; ok {
		// The classic algorithm confusion: a public key used as an HMAC
		// secret lets anyone who has the public key sign.
		return "", nil, false, fmt.Errorf("%s: %s takes a shared secret, not a PEM public key; give the key's algorithm (RS256, ES256, ...)", option, alg)
	}
	if !knownMercureAlg(alg) {
		return "", nil, false, unknownAlgErr(option, alg)
	}
	if err := checkKeyFitsAlg(alg, pub); err != nil {
		return "", nil, false, fmt.Errorf("%s: %v", option, err)
	}
	return alg, pub, false, nil
}

func knownMercureAlg(alg string) bool {
	_, hmac := mercureHMACAlgs[alg]
	_, ec := mercureECAlgs[alg]
	return hmac || ec || alg == "EdDSA" || containsString(mercureRSAAlgs, alg)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func unknownAlgErr(option, alg string) error {
	if strings.EqualFold(alg, "none") {
		return fmt.Errorf("%s: algorithm none means unsigned tokens; it is never accepted", option)
	}
	return fmt.Errorf("%s: unknown algorithm %q (HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)", option, hub.Truncate(alg, 32))
}

// parseMercurePEM reads one public key: a PUBLIC KEY (PKIX), RSA PUBLIC KEY
// (PKCS #1) or CERTIFICATE block. Private keys are refused.
func parseMercurePEM(s string) (any, error) {
	block, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("the PEM key does not parse (no -----BEGIN ...----- / -----END ...----- block)")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("the PEM holds more than one block; give exactly one public key")
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, errors.New("this is a private key; give the public key (the hub only verifies tokens and must not be able to sign them)")
	}
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the PUBLIC KEY block does not parse as a PKIX public key")
		}
		return pub, nil
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the RSA PUBLIC KEY block does not parse as a PKCS #1 public key")
		}
		return pub, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errors.New("the CERTIFICATE block does not parse")
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("a PEM %q block is not a public key (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", hub.Truncate(block.Type, 32))
}

// defaultAlgFor is the algorithm a PEM key implies when none is given.
func defaultAlgFor(pub any) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256", nil
	case *ecdsa.PublicKey:
		for alg, c := range mercureECAlgs {
			if k.Curve == c {
				return alg, nil
			}
		}
		return "", fmt.Errorf("ECDSA curve %s is not one of P-256, P-384, P-521", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}

// checkKeyFitsAlg refuses a key the algorithm cannot verify with, at load,
// rather than refusing every token later.
func checkKeyFitsAlg(alg string, pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if !containsString(mercureRSAAlgs, alg) {
			return fmt.Errorf("%s does not take an RSA key (RS256..RS512, PS256..PS512 do)", alg)
		}
		if k.N.BitLen() < mercureMinRSABits {
			return fmt.Errorf("the RSA key has %d bits; at least %d are required", k.N.BitLen(), mercureMinRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		want, ok := mercureECAlgs[alg]
		if !ok {
			return fmt.Errorf("%s does not take an ECDSA key (ES256, ES384, ES512 do)", alg)
		}
		if k.Curve != want {
			return fmt.Errorf("%s needs a %s key, this one is %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return fmt.Errorf("%s does not take an Ed25519 key (EdDSA does)", alg)
		}
		return nil
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}
