package caddysse

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// authRequest is a publish request as Caddy hands it to the handler: the
// client IP and whether it came through a trusted proxy are request vars
// set by the server (caddyhttp.PrepareRequest).
func authRequest(remote, clientIP string, trusted bool, srv *caddyhttp.Server, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/publish", nil)
	r.RemoteAddr = remote
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		r.Header.Add(k, v)
	}
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{
		caddyhttp.TrustedProxyVarKey: trusted,
		caddyhttp.ClientIPVarKey:     clientIP,
	})
	if srv != nil {
		ctx = context.WithValue(ctx, caddyhttp.ServerCtxKey, srv)
	}
	return r.WithContext(ctx)
}

func TestAuthorizeDecision(t *testing.T) {
	type conf struct {
		tokens    []string
		allowFrom []string // nil: not given
	}
	open := conf{}
	tokenOnly := conf{tokens: []string{"s3cret", "other"}}
	tokenAndLoopback := conf{tokens: []string{"s3cret"}, allowFrom: []string{"127.0.0.1"}}
	private := conf{allowFrom: []string{"10.0.0.0/8"}}
	everyone := conf{allowFrom: []string{"0.0.0.0/0", "::/0"}}
	mapped := conf{allowFrom: []string{"::ffff:127.0.0.3/128"}}
	cfHeaders := &caddyhttp.Server{ClientIPHeaders: []string{"CF-Connecting-IP"}}

	const local, local3, far, lb = "127.0.0.1:5000", "127.0.0.3:5000", "203.0.113.7:5000", "10.1.2.3:5000"
	for _, tc := range []struct {
		name     string
		conf     conf
		remote   string
		clientIP string // Caddy's client IP; "" means the remote's
		trusted  bool
		srv      *caddyhttp.Server
		headers  []string
		want     int    // 0: accepted
		field    string // of the refusal
		says     string // in the refusal
	}{
		// Default allow_from without a token: loopback.
		{name: "no token configured, loopback", conf: open, remote: local},
		{name: "no token configured, IPv6 loopback", conf: open, remote: "[::1]:5000"},
		{name: "no token configured, remote", conf: open, remote: far, want: 403, says: "not in allow_from"},
		{name: "wrong bearer from loopback", conf: open, remote: local, headers: []string{"Authorization: Bearer x"}, want: 401, field: "Authorization"},
		{name: "basic auth is not ours", conf: open, remote: local, headers: []string{"Authorization: Basic dXNlcjpwYXNz"}},

		// A token configured, allow_from not given: everyone needs it.
		{name: "token configured, loopback without it", conf: tokenOnly, remote: local, want: 401, field: "Authorization", says: "bearer token is required"},
		{name: "token configured, loopback with it", conf: tokenOnly, remote: local, headers: []string{"Authorization: Bearer s3cret"}},
		{name: "token configured, second token", conf: tokenOnly, remote: far, headers: []string{"Authorization: bearer   other "}},
		{name: "token configured, wrong token", conf: tokenOnly, remote: far, headers: []string{"Authorization: Bearer s3creT"}, want: 401},
		{name: "bearer with no token", conf: tokenOnly, remote: local, headers: []string{"Authorization: Bearer"}, want: 401, says: "invalid bearer"},
		{name: "bearer after a tab", conf: tokenOnly, remote: local, headers: []string{"Authorization: Bearer\ts3cret"}},
		// An explicit allow_from keeps loopback open next to the token.
		{name: "token and explicit allow_from, loopback", conf: tokenAndLoopback, remote: local},
		{name: "token and explicit allow_from, other", conf: tokenAndLoopback, remote: far, want: 401, says: "not in allow_from"},

		// Several Authorization headers: every bearer one must be right.
		{name: "right bearer then wrong bearer", conf: tokenOnly, remote: local, headers: []string{"Authorization: Bearer s3cret", "Authorization: Bearer nope"}, want: 401, says: "invalid bearer"},
		{name: "wrong bearer then right bearer", conf: tokenOnly, remote: local, headers: []string{"Authorization: Bearer nope", "Authorization: Bearer s3cret"}, want: 401},
		{name: "wrong bearer next to an allowed address", conf: open, remote: local, headers: []string{"Authorization: Basic dXNlcjpwYXNz", "Authorization: Bearer nope"}, want: 401},
		{name: "right bearer and basic", conf: tokenOnly, remote: far, headers: []string{"Authorization: Basic dXNlcjpwYXNz", "Authorization: Bearer s3cret"}},
		{name: "two right bearers", conf: tokenOnly, remote: far, headers: []string{"Authorization: Bearer s3cret", "Authorization: Bearer other"}},

		// A proxy on loopback relaying someone, no trusted_proxies.
		{name: "relayed by X-Forwarded-For", conf: open, remote: local, headers: []string{"X-Forwarded-For: 203.0.113.7"}, want: 403, field: "X-Forwarded-For", says: "trusted_proxies_strict"},
		{name: "relayed by Forwarded", conf: open, remote: local, headers: []string{"Forwarded: for=203.0.113.7"}, want: 403, field: "Forwarded"},
		{name: "relayed by X-Real-IP", conf: open, remote: local, headers: []string{"X-Real-IP: 203.0.113.7"}, want: 403, field: "X-Real-IP"},
		{name: "relayed by Via", conf: open, remote: local, headers: []string{"Via: 1.1 caddy"}, want: 403, field: "Via"},
		{name: "relayed by the server's client_ip_headers", conf: open, remote: local, srv: cfHeaders, headers: []string{"Cf-Connecting-Ip: 203.0.113.7"}, want: 403, field: "Cf-Connecting-Ip"},
		{name: "relayed claiming loopback", conf: open, remote: local, headers: []string{"X-Forwarded-For: 127.0.0.1"}, want: 403},
		{name: "relayed with an explicit 127.0.0.1", conf: tokenAndLoopback, remote: local, headers: []string{"X-Forwarded-For: 127.0.0.1"}, want: 401, field: "X-Forwarded-For", says: "trusted_proxies"},
		{name: "relayed with a token", conf: tokenAndLoopback, remote: local, headers: []string{"X-Forwarded-For: 203.0.113.7", "Authorization: Bearer s3cret"}},
		{name: "relayed by an allowed private balancer", conf: private, remote: lb, headers: []string{"X-Forwarded-For: 203.0.113.7"}, want: 403, field: "X-Forwarded-For"},
		{name: "relayed where everyone is allowed", conf: everyone, remote: local, headers: []string{"X-Forwarded-For: 203.0.113.7"}},
		{name: "token only, relayed", conf: tokenOnly, remote: local, headers: []string{"X-Forwarded-For: 203.0.113.7"}, want: 401, says: "bearer token is required"},

		// Through a trusted proxy, Caddy's client IP is judged.
		{name: "trusted proxy, local client", conf: open, remote: local, clientIP: "127.0.0.1", trusted: true, headers: []string{"X-Forwarded-For: 127.0.0.1"}},
		{name: "trusted proxy, remote client", conf: open, remote: local, clientIP: "203.0.113.7", trusted: true, headers: []string{"X-Forwarded-For: 203.0.113.7"}, want: 403, says: "203.0.113.7"},
		{name: "trusted balancer, private client", conf: private, remote: lb, clientIP: "10.9.9.9", trusted: true, headers: []string{"X-Forwarded-For: 10.9.9.9"}},

		// IPv4-mapped allow_from is read as IPv4.
		{name: "mapped range admits its IPv4 address", conf: mapped, remote: local3},
		{name: "mapped range admits the mapped form too", conf: mapped, remote: "[::ffff:127.0.0.3]:5000"},
		{name: "mapped range is only that address", conf: mapped, remote: local, want: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &PublishHandler{}
			for _, tok := range tc.conf.tokens {
				p.tokens = append(p.tokens, []byte(tok))
			}
			var err error
			if p.allowFrom, err = parseAllowFrom(tc.conf.allowFrom, len(p.tokens) > 0); err != nil {
				t.Fatal(err)
			}
			clientIP := tc.clientIP
			if clientIP == "" {
				ap := netip.MustParseAddrPort(tc.remote)
				clientIP = ap.Addr().String()
			}
			perr := p.authorize(authRequest(tc.remote, clientIP, tc.trusted, tc.srv, tc.headers...))
			switch {
			case tc.want == 0 && perr != nil:
				t.Fatalf("refused %d %q (field %q), want accepted", perr.Status, perr.Msg, perr.Field)
			case tc.want == 0:
				return
			case perr == nil:
				t.Fatalf("accepted, want %d", tc.want)
			case perr.Status != tc.want:
				t.Fatalf("refused %d %q, want %d", perr.Status, perr.Msg, tc.want)
			case tc.field != "" && perr.Field != tc.field:
				t.Fatalf("field %q, want %q (%s)", perr.Field, tc.field, perr.Msg)
			case !strings.Contains(perr.Msg, tc.says):
				t.Fatalf("message %q does not say %q", perr.Msg, tc.says)
			}
		})
	}
}

func TestParseAllowFromNormalises(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" means an error
		says string
	}{
		{in: "::ffff:127.0.0.3/128", want: "127.0.0.3/32"},
		{in: "::ffff:127.0.0.3", want: "127.0.0.3/32"},
		{in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{in: "::ffff:10.1.2.3/104", want: "10.0.0.0/8"},
		{in: "::ffff:0.0.0.0/96", want: "0.0.0.0/0"},
		{in: "::ffff:10.0.0.0/95", says: "shorter than /96"},
		{in: "::ffff:10.0.0.0/80", says: "shorter than /96"},
		{in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{in: "192.0.2.7", want: "192.0.2.7/32"},
		{in: "::1", want: "::1/128"},
		{in: "2001:db8::1/32", want: "2001:db8::/32"},
		{in: "fe80::1%eth0", says: "zone"},
		{in: "10.0.0.0/33", says: "10.0.0.0/33"},
		{in: "localhost", says: "neither an IP address nor a CIDR range"},
	} {
		got, err := parseAllowFrom([]string{tc.in}, false)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "allow_from") {
				t.Errorf("%s: got %v, %v; want an error naming allow_from and saying %q", tc.in, got, err, tc.says)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0].String() != tc.want {
			t.Errorf("%s: got %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestAllowFromDefaultDependsOnTokens(t *testing.T) {
	if got, _ := parseAllowFrom(nil, false); len(got) != 2 || got[0] != loopback[0] || got[1] != loopback[1] {
		t.Errorf("no token: default allow_from %v, want loopback", got)
	}
	if got, _ := parseAllowFrom(nil, true); len(got) != 0 {
		t.Errorf("with a token: default allow_from %v, want none", got)
	}
	if got, _ := parseAllowFrom([]string{"127.0.0.1"}, true); len(got) != 1 {
		t.Errorf("with a token and an explicit allow_from: %v, want it kept", got)
	}
	if got, _ := parseAllowFrom([]string{"none"}, false); len(got) != 0 {
		t.Errorf("none: %v", got)
	}
}
