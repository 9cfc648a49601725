package mercure

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"
)

// Where a Mercure client puts its token (the spec's "Presenting the Access
// Token"), and the CSRF rule for tokens that come from a cookie.
//
//  1. `Authorization: Bearer <token>` (the scheme name in any case). When
//     an Authorization header is present its token is used and any cookie
//     is ignored, even when the token turns out to be invalid. A header
//     that is not exactly one `Bearer <token68>` (another scheme, an empty
//     or malformed token, several headers) is a malformed presentation:
//     400 invalid_request, as Mercure's hub answers.
//  2. Compatibility mode only: the `authorization` query parameter (0.x).
//     Sent twice: refused. Modern mode reads no token from the URL (RFC
//     9700): the parameter is ignored, as any unknown parameter.
//  3. A cookie: `__Secure-mercure_access_token`, in compatibility mode also
//     `mercureAuthorization` (0.x); only cookie_name when it is set. An
//     empty cookie (what a logout leaves) counts as absent. When a browser
//     sends a name twice (two paths), the first, most specific one is
//     used, as browsers mean.

// The default cookie names.
const (
	mercureCookie1 = "__Secure-mercure_access_token" // 1.0
	mercureCookie0 = "mercureAuthorization"          // 0.x hubs
)

// mercureQueryParam is the 0.x query parameter that carries a token
// (compatibility mode only).
const mercureQueryParam = "authorization"

// mercureCookieNames are the cookies read for a token.
func mercureCookieNames(configured string, compat bool) []string {
	switch {
	case configured != "":
		return []string{configured}
	case compat:
		return []string{mercureCookie1, mercureCookie0}
	}
	return []string{mercureCookie1}
}

// MercureTokenSource says where a request's token came from.
type MercureTokenSource string

const (
	MercureTokenNone  MercureTokenSource = ""
	MercureFromHeader MercureTokenSource = "header"
	MercureFromQuery  MercureTokenSource = "query"
	MercureFromCookie MercureTokenSource = "cookie"
)

// MercureRequestToken is the token a request presents.
type MercureRequestToken struct {
	Token  string
	Source MercureTokenSource
	// Name is the query parameter or cookie that carried it, or
	// "Authorization".
	Name string
}

// ErrMercureInvalidRequest is wrapped by RequestToken's and
// CheckCookieOrigin's errors: the handler answers 400 with
// error="invalid_request".
var ErrMercureInvalidRequest = errors.New("invalid_request")

// RequestToken finds the token of a request. No token at all is not an
// error: it returns a zero MercureRequestToken (Source MercureTokenNone).
func (a *MercureAuth) RequestToken(r *http.Request) (MercureRequestToken, error) {
	bad := func(why string) (MercureRequestToken, error) {
		return MercureRequestToken{}, fmt.Errorf("%w: %s", ErrMercureInvalidRequest, why)
	}

	if hs := r.Header.Values("Authorization"); len(hs) > 0 {
		if len(hs) > 1 {
			return bad("more than one Authorization header")
		}
		tok, err := bearerCredentials(hs[0])
		if err != "" {
			return bad(err)
		}
		return MercureRequestToken{Token: tok, Source: MercureFromHeader, Name: "Authorization"}, nil
	}

	if a.compat {
		if vals, ok := r.URL.Query()[mercureQueryParam]; ok {
			if len(vals) > 1 {
				return bad("more than one authorization query parameter")
			}
			if vals[0] == "" {
				return bad("the authorization query parameter is empty")
			}
			return MercureRequestToken{Token: vals[0], Source: MercureFromQuery, Name: mercureQueryParam}, nil
		}
	}

	for _, name := range a.cookieNames {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return MercureRequestToken{Token: c.Value, Source: MercureFromCookie, Name: name}, nil
		}
	}
	return MercureRequestToken{}, nil
}

// bearerCredentials reads `Bearer <token68>` (RFC 6750 section 2.1; the
// scheme is case-insensitive, RFC 9110 section 11.1). problem says what is
// wrong otherwise, without quoting the credentials.
func bearerCredentials(h string) (token, problem string) {
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if scheme == "" {
			return "", "the Authorization header is empty"
		}
		return "", fmt.Sprintf("the Authorization header uses the %s scheme; the hub reads Bearer tokens only", hub.Truncate(scheme, 16))
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" {
		return "", "the Bearer Authorization header has no token"
	}
	if !isToken68(token) {
		return "", "the Bearer token is not a token68 (RFC 6750 section 2.1)"
	}
	return token, ""
}

// isToken68 reports RFC 7235's token68: 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// CheckCookieOrigin is the protocol's CSRF defence: a request that changes
// something (any method but GET, HEAD and OPTIONS: a publish) and is
// authorized by a cookie must come from the hub's own origin or one of
// publish_origins, as its Origin header says, or else its Referer. A
// request with neither is refused (as the protocol recommends); so is one
// whose Origin is "null". A token from the header or the query cannot be
// sent by another site's page without its consent, so it is not checked.
// A failed check is a malformed presentation of the token: 400
// invalid_request, as the spec and Mercure's hub have it.
//
// The hub's own origin is the scheme and Host of the request as Caddy sees
// it: behind a proxy that terminates TLS, list the public https origin in
// publish_origins.
func (a *MercureAuth) CheckCookieOrigin(r *http.Request, source MercureTokenSource) error {
	if source != MercureFromCookie {
		return nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	origin := r.Header.Get("Origin")
	from := "Origin"
	if origin == "" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return fmt.Errorf("%w: a request authorized by a cookie must have an Origin or Referer header", ErrMercureInvalidRequest)
		}
		u, err := url.Parse(ref)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("%w: the Referer is not an absolute URL", ErrMercureInvalidRequest)
		}
		origin, from = u.Scheme+"://"+u.Host, "Referer"
	}
	n, err := stream.NormalizeOrigin(origin)
	if err != nil || n == "null" {
		return fmt.Errorf("%w: the %s header is not an origin", ErrMercureInvalidRequest, from)
	}
	if n == stream.OwnOrigin(r) || a.publishOrigins[n] {
		return nil
	}
	return fmt.Errorf("%w: origin %s may not publish with a cookie (publish_origins)", ErrMercureInvalidRequest, hub.Truncate(n, 128))
}

// parsePublishOrigins checks the publish_origins option.
func parsePublishOrigins(origins []string) (map[string]bool, error) {
	m := make(map[string]bool, len(origins))
	for _, o := range origins {
		switch o {
		case "*":
			return nil, errors.New(`publish_origins: "*" would let any site publish with a visitor's cookie (CSRF); list the origins`)
		case "null":
			return nil, errors.New(`publish_origins: "null" is sent by sandboxed frames and file: pages of any site; it cannot be trusted`)
		}
		n, err := stream.NormalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("publish_origins: %v", err)
		}
		m[n] = true
	}
	return m, nil
}

// validCookieName reports an RFC 6265 cookie-name: a token, visible ASCII
// without separators.
func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// ignoredTokenHint says, for the log of a 401 without a token, where the
// request did carry one that this mode does not read: the usual mistake
// of a 0.x client on a modern hub.
func (a *MercureAuth) ignoredTokenHint(r *http.Request) string {
	if a.compat {
		return ""
	}
	q := r.URL.Query()
	for _, p := range []string{mercureQueryParam, "access_token"} {
		if q.Has(p) {
			return "the " + p + " query parameter is ignored: tokens in URLs are read only with protocol_version_compatibility 8 (authorization, 0.x); send an Authorization: Bearer header or the cookie"
		}
	}
	if len(a.cookieNames) == 1 && a.cookieNames[0] == mercureCookie1 {
		for _, name := range []string{mercureCookie0, "mercureAccessToken"} {
			if _, err := r.Cookie(name); err == nil {
				return "the " + name + " cookie is ignored: the hub reads " + mercureCookie1 + " (cookie_name changes it; protocol_version_compatibility 8 also reads mercureAuthorization)"
			}
		}
	}
	return ""
}
