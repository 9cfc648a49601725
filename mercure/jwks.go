package mercure

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Keys from a JSON Web Key Set URL (jwks_url), fetched and cached by
// github.com/MicahParks/keyfunc/v3 (storage: github.com/MicahParks/jwkset).
//
//   - The set is fetched once at load (a failure is logged, not fatal: Caddy
//     starts, and tokens are refused until the set is fetched) and again every
//     jwks_refresh in the background, until the config is unloaded or Close.
//     A refresh replaces the whole set, so a key removed from it stops
//     verifying.
//   - A token whose kid is not in the set triggers a fetch (a key rotated
//     in), at most one per jwks_unknown_kid_interval; other such tokens are
//     refused at once, without waiting, so random kids cannot make us hammer
//     the URL nor hold requests.
//   - Only asymmetric keys and algorithms are used: an "oct" (shared secret)
//     key published in a key set is ignored, and the token's alg must be one
//     of mercureJWKSAlgs and agree with the key's type and its "alg" member.

// mercureJWKSAlgs are the algorithms accepted from a key set.
var mercureJWKSAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

const (
	mercureDefaultJWKSRefresh    = time.Hour
	mercureDefaultJWKSUnknownKID = 5 * time.Minute
	// mercureJWKSTimeout bounds one fetch, including the first one, which
	// holds the config load.
	mercureJWKSTimeout = 10 * time.Second
	// mercureJWKSMaxBody bounds the key set document.
	mercureJWKSMaxBody = 1 << 20
)

type mercureJWKS struct {
	kf keyfunc.Keyfunc
}

func newMercureJWKS(ctx context.Context, setURL string, cfg MercureAuthConfig, logger *zap.Logger) (*mercureJWKS, error) {
	if strings.HasPrefix(setURL, "file://") {
		return fileMercureJWKS(setURL)
	}
	if err := checkJWKSURL(setURL); err != nil {
		return nil, fmt.Errorf("jwks_url: %v", err)
	}
	refresh, unknown := mercureDefaultJWKSRefresh, mercureDefaultJWKSUnknownKID
	if cfg.JWKSRefresh < 0 || cfg.JWKSUnknownKIDInterval < 0 {
		return nil, errors.New("jwks_refresh, jwks_unknown_kid_interval: a duration is negative")
	}
	if cfg.JWKSRefresh > 0 {
		refresh = time.Duration(cfg.JWKSRefresh)
	}
	if cfg.JWKSUnknownKIDInterval > 0 {
		unknown = time.Duration(cfg.JWKSUnknownKIDInterval)
	}
	client := &http.Client{
		Transport: limitBodyTransport{next: http.DefaultTransport, max: mercureJWKSMaxBody},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return checkJWKSURL(req.URL.String())
		},
	}
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{setURL}, keyfunc.Override{
		Client:      client,
		HTTPTimeout: mercureJWKSTimeout,
		// RateLimitWaitMax bounds both the wait for the unknown-kid limiter
		// and the fetch that follows it (jwkset uses one context for the
		// two). A token arriving when no fetch is allowed for longer than
		// this is refused at once.
		RateLimitWaitMax: mercureJWKSTimeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				logger.Error("mercure: fetching the JWKS failed; tokens signed with keys not yet known are refused", zap.String("jwks_url", u), zap.Error(err))
			}
		},
		RefreshInterval:   refresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknown), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("jwks_url: %v", err)
	}
	return &mercureJWKS{kf: kf}, nil
}

// fileMercureJWKS reads a key set from a file:// URL once, at load (keys
// mounted as files; Mercure's jwks_uri accepts them too).
func fileMercureJWKS(setURL string) (*mercureJWKS, error) {
	u, err := url.Parse(setURL)
	if err != nil || u.Path == "" || (u.Host != "" && u.Host != "localhost") {
		return nil, fmt.Errorf("jwks_uri: %q is not a file:///absolute/path URL", hub.Truncate(setURL, 256))
	}
	raw, err := os.ReadFile(u.Path)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %v", err)
	}
	if len(raw) > mercureJWKSMaxBody {
		return nil, fmt.Errorf("jwks_uri: the key set is larger than %d bytes", mercureJWKSMaxBody)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %s does not hold a JSON Web Key Set: %v", hub.Truncate(u.Path, 256), err)
	}
	return &mercureJWKS{kf: kf}, nil
}

// checkJWKSURL requires https, except towards a loopback host: keys fetched
// over plain HTTP could be replaced on the way, and whoever replaces them
// signs tokens.
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an http(s) URL", hub.Truncate(s, 256))
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		return nil
	}
	return fmt.Errorf("%q is plain http; keys must come over https (http is allowed only on a loopback host)", hub.Truncate(s, 256))
}

// keyFunc returns the keys a token may be verified with, without the ones
// we never accept from a key set.
func (j *mercureJWKS) keyFunc(tok *jwt.Token) (any, error) {
	k, err := j.kf.Keyfunc(tok)
	if err != nil {
		return nil, err
	}
	if set, ok := k.(jwt.VerificationKeySet); ok {
		var kept jwt.VerificationKeySet
		for _, key := range set.Keys {
			if usableJWKSKey(key) {
				kept.Keys = append(kept.Keys, key)
			}
		}
		if len(kept.Keys) == 0 {
			return nil, errors.New("no usable key in the key set")
		}
		return kept, nil
	}
	if !usableJWKSKey(k) {
		return nil, errors.New("the key set's key for this kid is not usable")
	}
	return k, nil
}

// usableJWKSKey refuses shared secrets and short RSA keys.
func usableJWKSKey(k any) bool {
	switch k := k.(type) {
	case []byte:
		return false
	case *rsa.PublicKey:
		return k.N.BitLen() >= mercureMinRSABits
	}
	return true
}

// limitBodyTransport fails a response whose body is larger than max.
type limitBodyTransport struct {
	next http.RoundTripper
	max  int64
}

func (t limitBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the limit: only the end of the body may follow.
		var one [1]byte
		if n, err := b.ReadCloser.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("the key set is larger than %d bytes", mercureJWKSMaxBody)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
