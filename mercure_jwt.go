package caddysse

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
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// Mercure token verification (DESIGN.md, "Mercure protocol"; the protocol's
// "Authorization" and "Token Validation" sections).
//
// Every check that decides whether a token is genuine is done by
// github.com/golang-jwt/jwt/v5 (signature, exp, nbf, iat, iss, aud, the
// algorithm allowlist) and, for a JWKS URL, github.com/MicahParks/keyfunc/v3:
// this file only configures them strictly and turns what they accept into a
// MercureGrant (mercure_grant.go).
//
// Two generations of tokens are understood, told apart by the JOSE header
// "typ", never by guessing from the claims:
//
//   - typ "at+jwt" (or "application/at+jwt"): a 1.0 access token (RFC 9068).
//     exp is required; rights come from authorization_details (RFC 9396) only.
//   - typ absent or "JWT": a 0.x token, as Symfony, API Platform and the
//     mercure.rocks docs issue them. exp is enforced when present (0.x tokens
//     often have none); rights come from the "mercure" claim only.
//
// Any other typ (an OpenID Connect ID token, a logout token, DPoP proof...)
// is refused: it was issued for something else.

// Limits and defaults of token verification.
const (
	// mercureDefaultLeeway absorbs clock skew between the token issuer and
	// this server on exp, nbf and iat. It also lengthens every token's life
	// by as much, hence the cap.
	mercureDefaultLeeway = 30 * time.Second
	mercureMaxLeeway     = 5 * time.Minute

	// mercureDefaultMaxTokenSize bounds a token before it is decoded: a
	// large token is parsed (base64 and JSON) before its signature can be
	// checked, so anonymous clients must not choose its size.
	mercureDefaultMaxTokenSize = 8 << 10

	// mercureDefaultMaxSelectors bounds the topic selectors a token may
	// carry (publish and subscribe together, both shapes); a token over it
	// is refused, as the protocol demands, not truncated.
	mercureDefaultMaxSelectors = 256

	// mercureDefaultMaxSelectorLength bounds each selector, in bytes.
	mercureDefaultMaxSelectorLength = 2048

	// mercureMinRSABits: RSA keys under 2048 bits are refused (NIST SP
	// 800-57; RFC 7518 section 3.3 requires 2048 too).
	mercureMinRSABits = 2048
)

// mercureExampleSecret is the HMAC key printed in Mercure's documentation
// and in framework skeletons. Anyone can sign tokens with it, so a hub
// configured with it is open to everyone: refused at load.
const mercureExampleSecret = "!ChangeThisMercureHubJWTSecretKey!"

// MercureAuthConfig is the token configuration of a Mercure route. It is
// meant to be embedded in the sse_mercure handler's JSON config.
//
// Key material: each role (publisher, subscriber) has its own key, as the
// protocol recommends. A role without a key uses jwks_url when it is set;
// a role with neither accepts no token at all (the handler decides what
// that means: no publishing, or anonymous subscribers only).
type MercureAuthConfig struct {
	// PublisherJWT verifies the tokens of publishers.
	PublisherJWT *MercureKeyConfig `json:"publisher_jwt,omitempty"`
	// SubscriberJWT verifies the tokens of subscribers.
	SubscriberJWT *MercureKeyConfig `json:"subscriber_jwt,omitempty"`

	// JWKSURL is a JSON Web Key Set (RFC 7517), usually an authorization
	// server's jwks_uri. It serves the roles that have no key of their
	// own. It must be https, except on a loopback host. Only asymmetric
	// algorithms are accepted from it (RS*, PS*, ES*, EdDSA).
	JWKSURL string `json:"jwks_url,omitempty"`
	// JWKSRefresh is how often the key set is fetched again in the
	// background. Default: 1h.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`
	// JWKSUnknownKIDInterval is the least time between two fetches caused
	// by tokens whose kid is not in the key set (a key rotated in since the
	// last refresh). Tokens with random kids therefore cost at most one
	// fetch per interval. Default: 5m.
	JWKSUnknownKIDInterval caddy.Duration `json:"jwks_unknown_kid_interval,omitempty"`

	// Issuer, when set, must equal the token's iss.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must be the token's aud or one of its members.
	// The 1.0 protocol requires it (the hub's resource identifier): set it
	// whenever tokens are 1.0 access tokens.
	Audience string `json:"audience,omitempty"`

	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s,
	// at most 5m.
	Leeway *caddy.Duration `json:"leeway,omitempty"`

	// CookieName replaces both default cookie names (mercureAccessToken
	// from 1.0, mercureAuthorization from 0.x).
	CookieName string `json:"cookie_name,omitempty"`

	// PublishOrigins are the origins, besides the hub's own, from which a
	// browser may publish with the cookie (CSRF protection, see
	// CheckCookieOrigin). "*" is not accepted.
	PublishOrigins []string `json:"publish_origins,omitempty"`

	// MaxTokenSize bounds a token, in bytes. Default 8 KiB.
	MaxTokenSize int `json:"max_token_size,omitempty"`
	// MaxTokenSelectors bounds the topic selectors of one token. Default 256.
	MaxTokenSelectors int `json:"max_token_selectors,omitempty"`
	// MaxSelectorLength bounds each selector, in bytes. Default 2048.
	MaxSelectorLength int `json:"max_selector_length,omitempty"`
}

// MercureKeyConfig is the verification key of one role: the Caddyfile's
// `publisher_jwt <key> [<alg>]`.
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

// option is the config option that configures this role's key.
func (r MercureRole) option() string {
	if r == MercurePublisher {
		return "publisher_jwt"
	}
	return "subscriber_jwt"
}

// MercureAuth verifies the tokens of one Mercure route. It is safe for
// concurrent use. Close stops its JWKS refresh (the handler's Cleanup).
type MercureAuth struct {
	// Publisher and Subscriber verify each role's tokens; nil when the
	// role has neither a key nor jwks_url.
	Publisher  *MercureVerifier
	Subscriber *MercureVerifier

	cookieNames    []string
	publishOrigins map[string]bool
	jwks           *mercureJWKS
	cancel         context.CancelFunc
}

// MercureVerifier verifies the tokens of one role.
type MercureVerifier struct {
	role    MercureRole
	algs    []string
	keyFunc jwt.Keyfunc
	parser  *jwt.Parser
	limits  mercureClaimLimits
	maxSize int
	now     func() time.Time // time.Now; tests move it
}

// NewMercureAuth checks cfg and builds the verifiers. Errors name the
// option at fault and never contain key material. ctx bounds the JWKS
// refresh goroutine (the handler passes its caddy.Context, which ends when
// the config is unloaded); Close ends it sooner. logger (nil: none) gets
// the JWKS fetch failures.
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
	limits := mercureClaimLimits{
		maxSelectors: orDefault(cfg.MaxTokenSelectors, mercureDefaultMaxSelectors),
		maxLength:    orDefault(cfg.MaxSelectorLength, mercureDefaultMaxSelectorLength),
	}
	maxSize := orDefault(cfg.MaxTokenSize, mercureDefaultMaxTokenSize)
	for _, o := range []struct {
		name string
		v    int
	}{{"max_token_size", cfg.MaxTokenSize}, {"max_token_selectors", cfg.MaxTokenSelectors}, {"max_selector_length", cfg.MaxSelectorLength}} {
		if o.v < 0 {
			return nil, fmt.Errorf("%s: %d is negative", o.name, o.v)
		}
	}

	a := &MercureAuth{cookieNames: []string{mercureCookie1, mercureCookie0}}
	if cfg.CookieName != "" {
		if !validCookieName(cfg.CookieName) {
			return nil, fmt.Errorf("cookie_name: %q is not a cookie name (RFC 6265 token characters)", truncate(cfg.CookieName, 64))
		}
		a.cookieNames = []string{cfg.CookieName}
	}
	var err error
	if a.publishOrigins, err = parsePublishOrigins(cfg.PublishOrigins); err != nil {
		return nil, err
	}

	opts := []jwt.ParserOption{
		jwt.WithLeeway(leeway),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}

	ctx, a.cancel = context.WithCancel(ctx)
	if cfg.JWKSURL != "" && (cfg.PublisherJWT == nil || cfg.SubscriberJWT == nil) {
		a.jwks, err = newMercureJWKS(ctx, cfg, logger)
		if err != nil {
			a.cancel()
			return nil, err
		}
	} else if cfg.JWKSURL != "" {
		a.cancel()
		return nil, errors.New("jwks_url: both publisher_jwt and subscriber_jwt are set, so the key set would never be used; remove one of them or jwks_url")
	}

	for _, role := range []MercureRole{MercurePublisher, MercureSubscriber} {
		kc := cfg.PublisherJWT
		if role == MercureSubscriber {
			kc = cfg.SubscriberJWT
		}
		v := &MercureVerifier{role: role, limits: limits, maxSize: maxSize, now: time.Now}
		switch {
		case kc != nil:
			alg, key, err := loadMercureKey(role.option(), *kc)
			if err != nil {
				a.cancel()
				return nil, err
			}
			v.algs = []string{alg}
			v.keyFunc = func(*jwt.Token) (any, error) { return key, nil }
		case a.jwks != nil:
			v.algs = mercureJWKSAlgs
			v.keyFunc = a.jwks.keyFunc
		default:
			continue
		}
		// The clock is read through v.now so that tests can move it.
		vopts := append(append([]jwt.ParserOption{}, opts...), jwt.WithValidMethods(v.algs), jwt.WithTimeFunc(func() time.Time { return v.now() }))
		v.parser = jwt.NewParser(vopts...)
		if role == MercurePublisher {
			a.Publisher = v
		} else {
			a.Subscriber = v
		}
	}
	return a, nil
}

// Close stops the JWKS refresh. It is safe to call more than once.
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
// ("expired", "bad signature", "authorization_details[1]: unknown action
// \"x\""...): safe to log and to show, it never carries key material, and
// quotes at most a few bytes of a malformed claim.
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
// checked by the jwt parser; the Mercure ones are decoded later, by shape.
type mercureClaims struct {
	jwt.RegisteredClaims
	Mercure              json.RawMessage `json:"mercure"`
	AuthorizationDetails json.RawMessage `json:"authorization_details"`
}

// Verify checks a token and returns what it grants. A token that is valid
// but grants nothing (no Mercure claim) gives an empty grant, not an
// error: it may still subscribe to public updates. Every error wraps
// ErrMercureInvalidToken and is a *MercureTokenError.
//
// A nil verifier (a role without a key) refuses every token.
func (v *MercureVerifier) Verify(token string) (*MercureGrant, error) {
	if v == nil {
		return nil, tokenErr("no key is configured for this role", nil)
	}
	if token == "" {
		return nil, tokenErr("empty", nil)
	}
	if len(token) > v.maxSize {
		return nil, tokenErr(fmt.Sprintf("larger than %d bytes", v.maxSize), nil)
	}
	var claims mercureClaims
	tok, err := v.parser.ParseWithClaims(token, &claims, v.keyFunc)
	if err != nil {
		return nil, classifyJWTError(err)
	}
	if _, ok := tok.Header["crit"]; ok {
		// RFC 7515 section 4.1.11: extensions marked critical must be
		// understood; this verifier understands none.
		return nil, tokenErr("critical header extension not supported", nil)
	}
	accessToken, err := mercureTokenType(tok.Header["typ"])
	if err != nil {
		return nil, err
	}
	if accessToken && claims.ExpiresAt == nil {
		// RFC 9068 section 2.2 and the 1.0 protocol: exp is required.
		return nil, tokenErr("access token without exp", jwt.ErrTokenRequiredClaimMissing)
	}
	g := &MercureGrant{AccessToken: accessToken, Subject: claims.Subject}
	if claims.ExpiresAt != nil {
		g.Expires = claims.ExpiresAt.Time
	}
	if accessToken {
		err = g.fromAuthorizationDetails(claims.AuthorizationDetails, v.limits)
	} else {
		err = g.fromMercureClaim(claims.Mercure, v.limits)
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

// mercureTokenType reads the JOSE "typ" header: true for a 1.0 access
// token, false for a 0.x token. Media type names are case-insensitive and
// may omit "application/" (RFC 7515 section 4.1.9).
func mercureTokenType(h any) (bool, error) {
	if h == nil {
		return false, nil
	}
	typ, ok := h.(string)
	if !ok {
		return false, tokenErr("typ header is not a string", nil)
	}
	switch strings.TrimPrefix(strings.ToLower(typ), "application/") {
	case "at+jwt":
		return true, nil
	case "jwt":
		return false, nil
	}
	return false, tokenErr("typ header is neither at+jwt nor JWT", nil)
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
		{jwt.ErrTokenNotValidYet, "not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
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
func loadMercureKey(option string, kc MercureKeyConfig) (alg string, key any, err error) {
	rep := caddy.NewReplacer()
	alg, err = rep.ReplaceOrErr(kc.Alg, false, true)
	if err != nil {
		return "", nil, fmt.Errorf("%s: algorithm: %v", option, err)
	}
	alg = strings.TrimSpace(alg)
	raw := kc.Key
	switch {
	case kc.Key != "" && kc.KeyFile != "":
		return "", nil, fmt.Errorf("%s: give the key or key_file, not both", option)
	case kc.KeyFile != "":
		b, err := os.ReadFile(kc.KeyFile)
		if err != nil {
			return "", nil, fmt.Errorf("%s: key_file: %v", option, err)
		}
		raw = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	case kc.Key == "":
		return "", nil, fmt.Errorf("%s: no key", option)
	default:
		// The error names the placeholder, never the value.
		if raw, err = rep.ReplaceOrErr(kc.Key, true, true); err != nil {
			return "", nil, fmt.Errorf("%s: key: %v", option, err)
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
			return "", nil, fmt.Errorf("%s: an %s secret must be at least %d bytes (RFC 7518 section 3.2); this one has %d", option, alg, minLen, len(raw))
		case ok && raw == mercureExampleSecret:
			return "", nil, fmt.Errorf("%s: this is the example secret from Mercure's documentation; anyone can sign tokens with it, choose your own", option)
		case ok:
			return alg, []byte(raw), nil
		case knownMercureAlg(alg):
			return "", nil, fmt.Errorf("%s: %s needs a PEM public key (-----BEGIN PUBLIC KEY-----), not a secret", option, alg)
		}
		return "", nil, unknownAlgErr(option, alg)
	}

	pub, err := parseMercurePEM(raw)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %v", option, err)
	}
	if alg == "" {
		if alg, err = defaultAlgFor(pub); err != nil {
			return "", nil, fmt.Errorf("%s: %v", option, err)
		}
	}
	if _, ok := mercureHMACAlgs[alg]; ok {
		// The classic algorithm confusion: a public key used as an HMAC
		// secret lets anyone who has the public key sign.
		return "", nil, fmt.Errorf("%s: %s takes a shared secret, not a PEM public key; give the key's algorithm (RS256, ES256, ...)", option, alg)
	}
	if !knownMercureAlg(alg) {
		return "", nil, unknownAlgErr(option, alg)
	}
	if err := checkKeyFitsAlg(alg, pub); err != nil {
		return "", nil, fmt.Errorf("%s: %v", option, err)
	}
	return alg, pub, nil
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
	return fmt.Errorf("%s: unknown algorithm %q (HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)", option, truncate(alg, 32))
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
	return nil, fmt.Errorf("a PEM %q block is not a public key (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", truncate(block.Type, 32))
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
