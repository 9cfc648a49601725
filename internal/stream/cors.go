package stream

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// Cross-origin EventSource (docs/subscribing.md, CORS).
//
// A page on another origin opens `new EventSource(url, {withCredentials:
// true})`: the browser sends its cookies and an Origin header, and shows the
// page the stream only if the answer echoes that origin with
// Access-Control-Allow-Credentials: true. It may first send a preflight
// (OPTIONS with Access-Control-Request-Method), for example when a
// Last-Event-ID it resends is too long or unusual to be "safelisted".
//
// The sse option `origins` lists who may do that. An origin not listed is
// refused with a plain-text 403 before anything else happens, so the
// browser stops instead of retrying and no subscriber is registered for
// it (sse_mercure answers it without CORS headers instead, as the Mercure
// spec has it: mercure/cors.go). A request without an Origin header (a
// same-origin GET, curl) and a request whose Origin is the route's own
// origin are served as before: CORS restricts what browsers let pages
// read, it is not authentication.
//
// `origins *` is for public streams: it answers Access-Control-Allow-Origin:
// * and never Access-Control-Allow-Credentials, so a browser sends no
// cookie (an EventSource withCredentials fails) and no site can read a
// visitor's private stream with it. Reflecting any origin with credentials,
// as `*` once did, let every site do exactly that. Without credentials
// there is nothing to protect from an opaque origin, so Origin: null (a
// file: page, a sandboxed frame) is served too.

// corsMaxAge is how long a browser may cache a preflight's answer, in
// seconds: Chromium caps it at 2h, Firefox at 24h.
const corsMaxAge = "7200"

// EventSourceHeaders are the request headers an EventSource sends; a
// preflight is allowed those (and only those) it asks for.
var EventSourceHeaders = []string{"last-event-id", "cache-control", "accept"}

// CORSPolicy is the parsed `origins` option.
type CORSPolicy struct {
	anyOrigin bool            // "*": any origin, "null" too, never with credentials
	allowed   map[string]bool // normalised origins, "null" when listed
	// ServesUnlisted answers an origin not allowed without CORS headers
	// (the browser then hides the answer from the page) instead of a 403:
	// sse_mercure's way, the Mercure hub's (mercure/cors.go).
	ServesUnlisted bool
	// Expose is the Access-Control-Expose-Headers of an allowed origin's
	// answer ("": none).
	Expose string
	// What a preflight may ask for: an EventSource's by default; an
	// sse_mercure route also takes POST and Authorization
	// (mercure/cors.go).
	Methods string
	Headers []string
}

// NewCORSPolicy parses the `origins` option; nil origins means no policy
// (no CORS headers at all).
func NewCORSPolicy(origins []string) (*CORSPolicy, error) {
	if len(origins) == 0 {
		return nil, nil
	}
	c := &CORSPolicy{allowed: make(map[string]bool, len(origins)), Methods: "GET, HEAD", Headers: EventSourceHeaders}
	for _, o := range origins {
		if o == "*" {
			c.anyOrigin = true
			continue
		}
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("origins: %v", err)
		}
		c.allowed[n] = true
	}
	if c.anyOrigin && len(c.allowed) > 0 {
		return nil, errors.New(`origins: "*" allows every origin; list no other origin with it`)
	}
	return c, nil
}

// normalizeOrigin checks that s is an origin, scheme://host[:port] with no
// path, query, fragment or user, and returns it as a browser serialises
// it: scheme and host in lower case, no default port. "null" (sandboxed
// frames, file: pages) is an origin too, allowed only when listed.
func NormalizeOrigin(s string) (string, error) {
	if s == "null" {
		return s, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%q is not an origin (scheme://host[:port], no path): %s", hub.Truncate(s, 128), why)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", bad("it does not parse")
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return "", bad("it needs a scheme and a host")
	case u.User != nil:
		return "", bad("it has a user")
	case u.Path != "" || u.RawPath != "":
		return "", bad("it has a path")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "", bad("it has a query or fragment")
	case strings.ContainsAny(u.Host, "*%"):
		return "", bad("wildcards and escapes are not allowed in the host")
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", bad("the host is empty")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", bad("the port is not 1-65535")
		}
		port = strconv.Itoa(n)
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port == "" {
		if strings.Contains(host, ":") {
			return scheme + "://[" + host + "]", nil
		}
		return scheme + "://" + host, nil
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// allows reports whether a request's Origin may read the stream: any
// well-formed origin under "*", else a listed one or the route's own.
func (c *CORSPolicy) allows(origin string, r *http.Request) bool {
	n, err := NormalizeOrigin(origin)
	if err != nil {
		return false
	}
	return c.anyOrigin || c.allowed[n] || n == OwnOrigin(r)
}

// ownOrigin is the origin the request was sent to, as a browser would
// write it in Origin for a same-origin request.
func OwnOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if own, err := NormalizeOrigin(scheme + "://" + r.Host); err == nil {
		return own
	}
	return ""
}

// handle applies the policy. It reports true when it has answered the
// request (a preflight, or a refused origin); otherwise the allowed
// origin's headers are set and the request is served as usual.
func (c *CORSPolicy) Handle(w http.ResponseWriter, r *http.Request) (bool, error) {
	hdr := w.Header()
	// The answer depends on Origin: caches must not hand one origin's
	// answer to another.
	hdr.Add("Vary", "Origin")
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return false, nil // not a cross-origin browser request; a bare OPTIONS stays a 405
	}
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if len(origins) > 1 || !c.allows(origins[0], r) {
		if !c.ServesUnlisted {
			return true, PlainError(w, http.StatusForbidden, "this origin may not read this event stream")
		}
		if preflight {
			// No Access-Control-* header: the browser refuses the
			// request it asked about.
			w.WriteHeader(http.StatusNoContent)
			return true, nil
		}
		return false, nil
	}
	if c.anyOrigin {
		// Never with credentials (see above): the literal "*", which a
		// browser refuses to a credentialed request.
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origins[0])
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	if !preflight {
		if c.Expose != "" {
			hdr.Set("Access-Control-Expose-Headers", c.Expose)
		}
		return false, nil
	}
	// A preflight: say what an EventSource may do. A method or header not
	// listed makes the browser refuse the request itself.
	hdr.Add("Vary", "Access-Control-Request-Method")
	hdr.Add("Vary", "Access-Control-Request-Headers")
	hdr.Set("Access-Control-Allow-Methods", c.Methods)
	if allowed := allowedRequestHeaders(r.Header.Values("Access-Control-Request-Headers"), c.Headers); allowed != "" {
		hdr.Set("Access-Control-Allow-Headers", allowed)
	}
	hdr.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true, nil
}

// allowedRequestHeaders answers a preflight's Access-Control-Request-Headers
// with those of its names that are in allowed, in the order asked.
func allowedRequestHeaders(requested, allowed []string) string {
	var out []string
	for _, line := range requested {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			for _, ok := range allowed {
				if name == ok && !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	return strings.Join(out, ", ")
}

// AnyOrigin reports the "*" policy.
func (c *CORSPolicy) AnyOrigin() bool { return c.anyOrigin }

// Listed reports whether a normalised origin is listed.
func (c *CORSPolicy) Listed(origin string) bool { return c.allowed[origin] }
