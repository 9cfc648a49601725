package caddysse

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Publish authorization (docs/publishing.md).
//
// A request is accepted when it carries a bearer token that matches one of
// the handler's tokens, or when its client is in allow_from. Two things make
// "the client" subtle behind a proxy:
//
//   - A proxy on the same host (another Caddy, nginx, a tunnel) connects from
//     loopback on behalf of anyone. Unless the server lists it in
//     trusted_proxies, Caddy's client IP is the proxy's, so the default
//     "loopback may publish" would admit the whole Internet. A request that
//     carries forwarding headers and did not come through a trusted proxy is
//     therefore a relay whose real client is unknown: no allow_from range
//     admits it (except one that admits every address, /0). This holds for
//     every peer, not only loopback: a private load balancer in an allowed
//     10.0.0.0/8 relays the Internet just the same.
//   - Through a trusted proxy, Caddy's client IP is the address the proxy
//     reports, and allow_from judges that.
//
// Once a token is configured, allow_from defaults to none: configuring a
// token says publishing is protected, and a loopback bypass nobody asked for
// would be the open door described above.

// forwardingHeaders name the client to a proxy's upstream. Their presence
// on a request that did not come through a trusted proxy means someone else
// is behind it.
var forwardingHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "Via"}

// authorize decides whether r may publish; nil means it may.
func (p *PublishHandler) authorize(r *http.Request) *PublishError {
	// Every bearer credential counts: a request carrying a wrong one is
	// refused whatever else it carries, so a proxy that adds a header
	// cannot turn a refused request into an accepted one.
	bearer := false
	for _, h := range r.Header.Values("Authorization") {
		token, ok := bearerToken(h)
		if !ok {
			continue // basic_auth in front of us, say: not ours to judge
		}
		if !p.tokenMatches(token) {
			return &PublishError{Status: http.StatusUnauthorized, Field: "Authorization", Msg: "invalid bearer token"}
		}
		bearer = true
	}
	if bearer {
		return nil
	}

	addr, known := clientAddr(r)
	relay := ""
	if known && !viaTrustedProxy(r) {
		relay = forwardedBy(r)
	}
	if known && p.allowedFrom(addr, relay != "") {
		return nil
	}

	switch {
	case len(p.allowFrom) == 0 && len(p.tokens) > 0:
		return &PublishError{Status: http.StatusUnauthorized, Field: "Authorization",
			Msg: "a bearer token is required (\"Authorization: Bearer <token>\" with one of the route's token values)"}
	case relay != "":
		return &PublishError{Status: p.refusal(), Field: relay, Msg: fmt.Sprintf(
			"this request came through a proxy (it carries %s) that is not in the server's trusted_proxies, "+
				"so its client is unknown and allow_from cannot admit it; "+
				"list the proxy's address in the server's trusted_proxies (with trusted_proxies_strict)%s",
			relay, p.orToken())}
	case !known:
		return &PublishError{Status: p.refusal(), Msg: "the client address is unknown, so allow_from cannot admit it" + p.orToken()}
	}
	return &PublishError{Status: p.refusal(), Msg: fmt.Sprintf(
		"publishing is not allowed from %s: it is not in allow_from%s", addr, p.orToken())}
}

// refusal is 401 where a token would help, 403 where none is configured.
func (p *PublishHandler) refusal() int {
	if len(p.tokens) > 0 {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

func (p *PublishHandler) orToken() string {
	if len(p.tokens) > 0 {
		return `, or send "Authorization: Bearer <token>"`
	}
	return ", or configure a token for this route and send it as a bearer token"
}

// allowedFrom reports whether allow_from admits addr. A relayed request's
// real client is unknown: only a range that admits everyone admits it.
func (p *PublishHandler) allowedFrom(addr netip.Addr, relayed bool) bool {
	for _, pfx := range p.allowFrom {
		if relayed {
			if pfx.Bits() == 0 {
				return true
			}
			continue
		}
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// tokenMatches compares against every token in constant time, so timing
// tells neither which token nor how much of one matched.
func (p *PublishHandler) tokenMatches(token string) bool {
	match := 0
	for _, t := range p.tokens {
		match |= subtle.ConstantTimeCompare([]byte(token), t)
	}
	return match == 1
}

// bearerToken returns the credentials of a Bearer authorization header
// (scheme case-insensitive, RFC 9110), and whether it is one. "Bearer" with
// nothing after it is a bearer header with an empty, hence wrong, token.
func bearerToken(h string) (string, bool) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "bearer") {
		if scheme, rest, _ = strings.Cut(h, "\t"); !strings.EqualFold(scheme, "bearer") {
			return "", false
		}
	}
	return strings.TrimSpace(rest), true
}

// clientAddr is Caddy's client IP, which honours trusted_proxies.
func clientAddr(r *http.Request) (netip.Addr, bool) {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = host
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

// viaTrustedProxy reports whether Caddy found the request's peer in the
// server's trusted_proxies (and so took the client IP from its headers).
func viaTrustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// forwardedBy names the first forwarding header r carries, the server's
// client_ip_headers included, or "" when it carries none.
func forwardedBy(r *http.Request) string {
	for _, h := range forwardingHeaders {
		if len(r.Header.Values(h)) > 0 {
			return h
		}
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil {
		for _, h := range srv.ClientIPHeaders {
			if len(r.Header.Values(h)) > 0 {
				return http.CanonicalHeaderKey(h)
			}
		}
	}
	return ""
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// parseAllowFrom reads allow_from values into normalised ranges. nil
// (allow_from not given) is the default, which depends on whether the route
// has tokens: loopback without, none with. An IPv4-mapped IPv6 range means
// its IPv4 range: Caddy's client IP and ours are unmapped, so a mapped range
// as written could never match.
func parseAllowFrom(vals []string, haveTokens bool) ([]netip.Prefix, error) {
	if vals == nil {
		if haveTokens {
			return nil, nil
		}
		return loopback, nil
	}
	if len(vals) == 1 && vals[0] == "none" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, v := range vals {
		if v == "none" {
			return nil, errors.New("sse_publish: allow_from none cannot be combined with addresses")
		}
		pfx, err := parseRange(v)
		if err != nil {
			return nil, fmt.Errorf("sse_publish: allow_from %q: %v", v, err)
		}
		out = append(out, pfx)
	}
	return out, nil
}

// parseRange reads one IP address or CIDR range, unmapped and masked.
func parseRange(v string) (netip.Prefix, error) {
	var pfx netip.Prefix
	if strings.Contains(v, "/") {
		var err error
		if pfx, err = netip.ParsePrefix(v); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		addr, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Prefix{}, errors.New("neither an IP address nor a CIDR range")
		}
		if addr.Zone() != "" {
			return netip.Prefix{}, errors.New("an address with a zone cannot be matched; leave out the %zone")
		}
		pfx = netip.PrefixFrom(addr, addr.BitLen())
	}
	if a := pfx.Addr(); a.Is4In6() {
		// ::ffff:a.b.c.d/n covers a.b.c.d/(n-96); under /96 it also covers
		// addresses that are not IPv4-mapped, which no client IP ever is.
		if pfx.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("an IPv4-mapped range shorter than /96 cannot be expressed in IPv4; write the IPv4 range (%s/n) instead", a.Unmap())
		}
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked(), nil
}
