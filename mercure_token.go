package caddysse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Where a Mercure client puts its token (the protocol's "Presenting the
// Access Token"), and the CSRF rule for tokens that come from a cookie.
//
// Sources, in the protocol's order of precedence (1.0 states it; 0.x hubs
// behave the same way): the first source present is used and the others
// are ignored, even when its token turns out to be invalid.
//
//  1. `Authorization: Bearer <token>`. Other schemes are not ours and are
//     ignored (a site behind basic_auth sends `Basic` on every request).
//     Two Bearer headers are refused: which one the client meant is a
//     guess.
//  2. The query parameter `access_token` (1.0) or `authorization` (0.x).
//     Sent twice, or both at once: refused.
//  3. A cookie: `mercureAccessToken` (1.0), then `mercureAuthorization`
//     (0.x), or only cookie_name when it is set. An empty cookie (what a
//     logout leaves) counts as absent. When a browser sends a name twice
//     (two paths), the first, most specific one is used, as browsers mean.

// The default cookie names.
const (
	mercureCookie1 = "mercureAccessToken"   // 1.0 draft
	mercureCookie0 = "mercureAuthorization" // 0.x hubs
)

// The query parameters that may carry a token.
var mercureQueryParams = []string{"access_token", "authorization"}

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

// ErrMercureInvalidRequest is wrapped by RequestToken's errors: the handler
// answers 400 with error="invalid_request".
var ErrMercureInvalidRequest = errors.New("invalid_request")

// ErrMercureCrossOrigin is wrapped by CheckCookieOrigin's errors: the
// handler answers 403.
var ErrMercureCrossOrigin = errors.New("cross-origin request refused")

// RequestToken finds the token of a request. No token at all is not an
// error: it returns a zero MercureRequestToken (Source MercureTokenNone).
func (a *MercureAuth) RequestToken(r *http.Request) (MercureRequestToken, error) {
	bad := func(why string) (MercureRequestToken, error) {
		return MercureRequestToken{}, fmt.Errorf("%w: %s", ErrMercureInvalidRequest, why)
	}

	var bearer []string
	for _, h := range r.Header.Values("Authorization") {
		if tok, ok := bearerToken(h); ok {
			bearer = append(bearer, tok)
		}
	}
	switch {
	case len(bearer) > 1:
		return bad("more than one Bearer Authorization header")
	case len(bearer) == 1 && bearer[0] == "":
		return bad("the Bearer Authorization header has no token")
	case len(bearer) == 1:
		return MercureRequestToken{Token: bearer[0], Source: MercureFromHeader, Name: "Authorization"}, nil
	}

	query := r.URL.Query()
	var found MercureRequestToken
	for _, name := range mercureQueryParams {
		vals := query[name]
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 || found.Source != MercureTokenNone {
			return bad("more than one token in the query (access_token, authorization)")
		}
		if vals[0] == "" {
			return bad("the " + name + " query parameter is empty")
		}
		found = MercureRequestToken{Token: vals[0], Source: MercureFromQuery, Name: name}
	}
	if found.Source != MercureTokenNone {
		return found, nil
	}

	for _, name := range a.cookieNames {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return MercureRequestToken{Token: c.Value, Source: MercureFromCookie, Name: name}, nil
		}
	}
	return MercureRequestToken{}, nil
}

// CheckCookieOrigin is the protocol's CSRF defence: a request that changes
// something (any method but GET, HEAD and OPTIONS: a publish) and is
// authorized by a cookie must come from the hub's own origin or one of
// publish_origins, as its Origin header says, or else its Referer. A
// request with neither is refused (as the protocol recommends); so is one
// whose Origin is "null". A token from the header or the query cannot be
// sent by another site's page without its consent, so it is not checked.
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
			return fmt.Errorf("%w: a request authorized by a cookie must have an Origin or Referer header", ErrMercureCrossOrigin)
		}
		u, err := url.Parse(ref)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("%w: the Referer is not an absolute URL", ErrMercureCrossOrigin)
		}
		origin, from = u.Scheme+"://"+u.Host, "Referer"
	}
	n, err := normalizeOrigin(origin)
	if err != nil || n == "null" {
		return fmt.Errorf("%w: the %s header is not an origin", ErrMercureCrossOrigin, from)
	}
	if n == ownOrigin(r) || a.publishOrigins[n] {
		return nil
	}
	return fmt.Errorf("%w: origin %s may not publish with a cookie (publish_origins)", ErrMercureCrossOrigin, truncate(n, 128))
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
		n, err := normalizeOrigin(o)
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
