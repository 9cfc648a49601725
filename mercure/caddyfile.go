package mercure

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/ssehub/caddy-sse/internal/caddyargs"
	"github.com/ssehub/caddy-sse/internal/suggest"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("sse_mercure", parseMercure)
	// Next to sse and sse_publish: before encode, so no compressor sits in
	// front of a stream.
	httpcaddyfile.RegisterDirectiveOrder("sse_mercure", httpcaddyfile.Before, "encode")
}

func parseMercure(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Mercure's
// own option names and blocks are accepted where they mean something here,
// so that a Mercure Caddyfile works with `mercure` renamed to
// `sse_mercure`; this project's earlier names stay as aliases. Syntax:
//
//	sse_mercure [<matcher>] {
//		issuer <iss> {                     # a trusted token issuer (repeatable), as Mercure's
//			publisher  { jwt <key> [<alg>] | jwks_uri <url> [<alg>...] }
//			subscriber { jwt <key> [<alg>] | jwks_uri <url> [<alg>...] }
//			authorization_server             # advertise it in the protected resource metadata
//		}
//		resource_identifier <uri>          # the tokens' aud (default: derived per request)
//		anonymous                          # subscribers without a token get public updates
//		cookie_name    <name>              # default __Secure-mercure_access_token
//		publish_origins <origin>...        # origins besides the hub's that may publish with the cookie
//		cors_origins   <origin>...|*       # alias: origins; listed: with credentials; *: any page, without
//		subscriptions                      # subscription events and the subscriptions API
//		heartbeat      <duration>|off|0s   # idle keep-alive comment (default 15s)
//		protocol_version_compatibility 8   # also accept Mercure 0.x clients and tokens
//		transport local | bolt [{ size <n> ... }]  # Mercure's transports, mapped to the replay ring
//		max_request_body_size <size>       # alias: max_body
//		dispatch_timeout <duration>        # alias: write_timeout
//
//		# Top-level keys (Mercure's implicit issuer: compatibility mode only,
//		# unless `issuer <iss>` names their issuer):
//		publisher_jwt  <key> [<alg>]       # a secret (HS256 default, HS384, HS512) or a PEM public key
//		subscriber_jwt <key> [<alg>]       # (RS*, PS*, ES*, EdDSA); {env.X}, {file./path}
//		publisher_jwks_url  <url>
//		subscriber_jwks_url <url>
//		jwks_url       <url>               # key set for the roles without a key of their own
//		issuer         <iss>               # without a block: the issuer of the top-level keys
//		audience       <aud>               # former name of resource_identifier
//
//		# This project's options:
//		hub            <name>              # hub holding the updates (default "default")
//		subscriptions_ttl <duration>       # Redis: a crashed instance's subscriptions listed this long (default 30s)
//		max_topics     <count>             # topic fields one update may carry (default 1000)
//		max_topic_length <size>            # bytes per topic (default: no cap but max_body)
//		max_body       <size>              # publish request body (default 1MiB)
//		replay         <count>             # updates kept for resuming, all topics together (default 1000)
//		replay_size    <size>              # bytes kept (default 4MiB)
//		replay_age     <duration>          # drop older updates (default: until evicted)
//		write_timeout  <duration>          # no progress this long drops the subscriber (default 10s)
//		queue          <count>             # updates waiting per subscriber (default 256)
//		max_subscribers <count>            # open streams on this route (default: no limit)
//		leeway         <duration>          # clock skew tolerated on exp and nbf (default 30s, at most 5m)
//		jwks_refresh   <duration>          # key sets fetched again this often (default 1h)
//		jwks_unknown_kid_interval <duration>  # least time between fetches for unknown kids (default 5m)
//		max_token_size <size>              # default 64KiB
//		max_token_details <count>          # Mercure authorization details per token (default 100)
//		max_token_topics <count>           # topic matchers per detail (default 100)
//		max_token_selectors <count>        # topic matchers per token (default details × topics)
//		max_selector_length <size>         # bytes per token matcher (default 4KiB)
//		max_matchers   <count>         # matcher parameters per subscribe request (default 100)
//		max_matcher_length <size>      # bytes per matcher (default 4KiB)
//		max_pattern_cost <count>       # estimated compile cost of one URL pattern (default 4096)
//		pattern_budget <count>         # estimated compile cost of one subscriber's patterns (default 16384)
//		pattern_cache_size <size>      # compiled patterns kept for sharing (default 32MiB)
//	}
func (m *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := m.unmarshalOption(d); err != nil {
			return err
		}
	}
	if _, err := m.corsPolicy(); err != nil {
		return d.Errf("sse_mercure: %v", err)
	}
	m.MercureAuthConfig.compat = m.compat()
	if !m.HasPublisherKey() {
		return d.Err(errNoPublisherKey.Error())
	}
	if _, err := m.MercureAuthConfig.allIssuers(); err != nil {
		return d.Errf("sse_mercure: %v", err)
	}
	if _, err := m.MercureAuthConfig.resourceIdentifier(); err != nil {
		return d.Errf("sse_mercure: %v", err)
	}
	return nil
}

// mercureOptions are the options of an sse_mercure block, listed for the
// hint that follows an unknown one: the switch below has these cases, and
// others for Mercure options it refuses with a reason of their own.
var mercureOptions = []string{"issuer", "publisher_jwt", "subscriber_jwt", "jwks_url", "publisher_jwks_url",
	"subscriber_jwks_url", "resource_identifier", "audience", "cookie_name", "publish_origins", "origins",
	"cors_origins", "anonymous", "subscriptions", "protocol_version_compatibility", "transport", "hub",
	"max_topics", "max_topic_length", "max_body", "max_request_body_size", "replay", "replay_size",
	"subscriptions_ttl", "replay_age", "heartbeat", "write_timeout", "dispatch_timeout", "queue",
	"max_subscribers", "leeway", "jwks_refresh", "jwks_unknown_kid_interval", "max_token_size",
	"max_selector_length", "max_token_details", "max_token_topics", "max_token_selectors", "max_matchers",
	"max_pattern_cost", "pattern_budget", "max_matcher_length", "pattern_cache_size"}

// unmarshalOption reads one option of the block.
func (m *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); opt {
	case "issuer":
		return m.unmarshalIssuer(d)
	case "publisher_jwt", "subscriber_jwt":
		dst := &m.PublisherJWT
		if opt == "subscriber_jwt" {
			dst = &m.SubscriberJWT
		}
		if *dst != nil {
			return d.Errf("%s is given twice", opt)
		}
		kc, err := keyArgs(d, opt)
		if err != nil {
			return err
		}
		*dst = kc
	case "jwks_url":
		return caddyargs.One(d, &m.JWKSURL)
	case "publisher_jwks_url":
		return caddyargs.One(d, &m.PublisherJWKSURL)
	case "subscriber_jwks_url":
		return caddyargs.One(d, &m.SubscriberJWKSURL)
	case "resource_identifier":
		return caddyargs.One(d, &m.ResourceIdentifier)
	case "audience":
		return caddyargs.One(d, &m.Audience)
	case "cookie_name":
		if err := caddyargs.One(d, &m.CookieName); err != nil {
			return err
		}
		if !validCookieName(m.CookieName) {
			return d.Errf("cookie_name: %q is not a valid cookie name", m.CookieName)
		}
	case "publish_origins":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Err("publish_origins: give one or more origins (https://app.example.com)")
		}
		m.PublishOrigins = append(m.PublishOrigins, args...)
		if _, err := parsePublishOrigins(m.PublishOrigins); err != nil {
			return d.Errf("%v", err)
		}
	case "origins", "cors_origins":
		return caddyargs.Origins(d, &m.Origins)
	case "anonymous", "subscriptions":
		if d.NextArg() {
			return d.Errf("%s takes no argument", opt)
		}
		if opt == "anonymous" {
			m.Anonymous = true
		} else {
			m.Subscriptions = true
		}
	case "protocol_version_compatibility":
		if err := caddyargs.Count(d, &m.ProtocolVersionCompatibility, false); err != nil {
			return err
		}
		if m.ProtocolVersionCompatibility != 8 {
			return d.Errf("protocol_version_compatibility: only 8 (Mercure 0.x clients) is supported, not %d", m.ProtocolVersionCompatibility)
		}
	case "transport":
		return m.unmarshalTransport(d)
	case "transport_url":
		return d.Err("transport_url was removed in Mercure 1.0; updates are kept in the hub's replay ring (transport local, transport bolt { size <n> }, or replay <n>), in Redis with the global `sse { redis ... }` option")
	case "public_urls":
		return d.Err("public_urls is not offered by sse_mercure: give the site the host names it answers on (a host matcher or site address), and pin resource_identifier for one audience")
	case "debugger", "playground", "ui", "demo":
		return d.Errf("%s: sse_mercure serves no debugger or playground UI; remove it", opt)
	case "topic_matcher_cache", "subscriber_list_cache_size":
		return d.Errf("%s: sse_mercure's matcher caches are bounded internally and have no such option; remove it", opt)
	case "hub":
		return caddyargs.One(d, &m.Hub)
	case "max_topics":
		return caddyargs.Count(d, &m.MaxTopics, false)
	case "max_topic_length":
		var n int64
		if err := caddyargs.Size(d, &n); err != nil {
			return err
		}
		if n > 1<<20 {
			return d.Errf("max_topic_length: at most 1MiB")
		}
		m.MaxTopicLength = int(n)
	case "max_body", "max_request_body_size":
		return caddyargs.Size(d, &m.MaxBody)
	case "replay":
		n := 0
		if err := caddyargs.Count(d, &n, true); err != nil {
			return err
		}
		m.Replay = &n
	case "replay_size":
		return caddyargs.Size(d, &m.ReplaySize)
	case "subscriptions_ttl":
		return caddyargs.Duration(d, &m.SubscriptionsTTL)
	case "replay_age":
		return caddyargs.Duration(d, &m.ReplayAge)
	case "heartbeat":
		dur, err := mercureHeartbeatArg(d)
		if err != nil {
			return err
		}
		m.Heartbeat = &dur
	case "write_timeout", "dispatch_timeout":
		return caddyargs.Duration(d, &m.WriteTimeout)
	case "queue":
		return caddyargs.Count(d, &m.Queue, false)
	case "max_subscribers":
		return caddyargs.Count(d, &m.MaxSubscribers, false)
	case "leeway":
		var v string
		if err := caddyargs.One(d, &v); err != nil {
			return err
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil || dur < 0 {
			return d.Errf("leeway: %q is not a duration of 0 or more", v)
		}
		l := caddy.Duration(dur)
		m.Leeway = &l
	case "jwks_refresh":
		return caddyargs.Duration(d, &m.JWKSRefresh)
	case "jwks_unknown_kid_interval":
		return caddyargs.Duration(d, &m.JWKSUnknownKIDInterval)
	case "max_token_size", "max_selector_length":
		var n int64
		if err := caddyargs.Size(d, &n); err != nil {
			return err
		}
		if n > 16<<20 {
			return d.Errf("%s: at most 16MiB", opt)
		}
		if opt == "max_token_size" {
			m.MaxTokenSize = int(n)
		} else {
			m.MaxSelectorLength = int(n)
		}
	case "max_token_details":
		return caddyargs.Count(d, &m.MaxTokenDetails, false)
	case "max_token_topics":
		return caddyargs.Count(d, &m.MaxTokenTopics, false)
	case "max_token_selectors":
		return caddyargs.Count(d, &m.MaxTokenSelectors, false)
	// --- Subscribe side: matcher limits (subscribe.go).
	case "max_matchers":
		if err := caddyargs.Count(d, &m.MaxMatchers, false); err != nil {
			return err
		}
	case "max_pattern_cost":
		if err := caddyargs.Count(d, &m.MaxPatternCost, false); err != nil {
			return err
		}
	case "pattern_budget":
		if err := caddyargs.Count(d, &m.PatternBudget, false); err != nil {
			return err
		}
	case "max_matcher_length":
		var n int64
		if err := caddyargs.Size(d, &n); err != nil {
			return err
		}
		if n > 1<<20 {
			return d.Errf("max_matcher_length: at most 1MiB")
		}
		m.MaxMatcherLength = int(n)
	case "pattern_cache_size":
		if err := caddyargs.Size(d, &m.PatternCacheSize); err != nil {
			return err
		}
	// --- end of the subscribe side's options
	default:
		return d.Errf("unrecognized sse_mercure option %q%s", opt, suggest.Hint(opt, mercureOptions))
	}
	return nil
}

// keyArgs reads `<key> [<alg>]`.
func keyArgs(d *caddyfile.Dispenser, opt string) (*MercureKeyConfig, error) {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return nil, d.Errf("%s: give a key and optionally its algorithm: %s <key> [<alg>]", opt, opt)
	}
	kc := &MercureKeyConfig{Key: args[0]}
	if len(args) == 2 {
		kc.Alg = args[1]
	}
	return kc, nil
}

// The options of an issuer block and of its publisher and subscriber
// blocks, listed for the hint that follows an unknown one (the switches
// below have these cases).
var (
	issuerOptions   = []string{"authorization_server", "publisher", "subscriber"}
	verifierOptions = []string{"jwt", "jwks_uri"}
)

// unmarshalIssuer reads `issuer <iss>` (the issuer of the top-level keys,
// this project's earlier option) or Mercure's block
// `issuer <iss> { publisher { ... } subscriber { ... } authorization_server }`.
func (m *Handler) unmarshalIssuer(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 1 {
		// An empty {$MERCURE_TRUSTED_ISSUERS} leaves no argument.
		return d.Err("issuer: give the issuer identifier, the iss of its tokens: issuer https://example.com { publisher { jwt <key> } }")
	}
	iss := args[0]
	nesting := d.Nesting()
	if !d.NextBlock(nesting) {
		if m.Issuer != "" {
			return d.Err("issuer: the one-argument form (the issuer of publisher_jwt/subscriber_jwt) is given twice")
		}
		m.Issuer = iss
		return nil
	}
	is := MercureIssuerConfig{Issuer: iss}
	for ok := true; ok; ok = d.NextBlock(nesting) {
		switch sub := d.Val(); sub {
		case "authorization_server":
			if d.NextArg() {
				return d.Err("authorization_server takes no argument (it advertises the issuer of its block)")
			}
			is.AuthorizationServer = true
		case "publisher", "subscriber":
			dst := &is.Publisher
			if sub == "subscriber" {
				dst = &is.Subscriber
			}
			if *dst != nil {
				return d.Errf("issuer %s: %s is given twice", iss, sub)
			}
			vc, err := unmarshalVerifier(d, iss, sub)
			if err != nil {
				return err
			}
			*dst = vc
		default:
			return d.Errf("issuer %s: unrecognized option %q%s", iss, sub, suggest.Hint(sub, issuerOptions))
		}
	}
	if is.Publisher == nil && is.Subscriber == nil {
		return d.Errf("issuer %s: give a publisher or subscriber block with its key (jwt <key> or jwks_uri <url>)", iss)
	}
	m.Issuers = append(m.Issuers, is)
	return nil
}

// unmarshalVerifier reads `publisher { jwt <key> [<alg>] | jwks_uri <url> [<alg>...] }`.
func unmarshalVerifier(d *caddyfile.Dispenser, iss, role string) (*MercureVerifierConfig, error) {
	if len(d.RemainingArgs()) > 0 {
		return nil, d.Errf("issuer %s: %s takes a block: %s { jwt <key> [<alg>] }", iss, role, role)
	}
	vc := &MercureVerifierConfig{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "jwt":
			if vc.JWT != nil {
				return nil, d.Errf("issuer %s %s: jwt is given twice", iss, role)
			}
			kc, err := keyArgs(d, "jwt")
			if err != nil {
				return nil, err
			}
			vc.JWT = kc
		case "jwks_uri":
			args := d.RemainingArgs()
			if len(args) == 0 || vc.JWKSURI != "" {
				return nil, d.Errf("issuer %s %s: give one jwks_uri <url> [<alg>...]", iss, role)
			}
			vc.JWKSURI, vc.Algorithms = args[0], args[1:]
		default:
			return nil, d.Errf("issuer %s %s: unrecognized option %q%s", iss, role, opt, suggest.Hint(opt, verifierOptions))
		}
	}
	switch {
	case vc.JWT != nil && vc.JWKSURI != "":
		return nil, d.Errf("issuer %s %s: jwt and jwks_uri are mutually exclusive", iss, role)
	case vc.JWT == nil && vc.JWKSURI == "":
		return nil, d.Errf("issuer %s %s: give jwt <key> [<alg>] or jwks_uri <url>", iss, role)
	}
	return vc, nil
}

// boltOptions are the options of a transport bolt block, listed for the
// hint that follows an unknown one (the switch below has these cases).
var boltOptions = []string{"size", "path", "bucket_name", "cleanup_frequency"}

// unmarshalTransport maps Mercure's transports to this project's engines.
// Updates live in the hub's engine: memory by default, Redis with the
// global `sse { redis ... }` option (which serves every hub). What a
// Mercure transport says about history maps to the replay ring:
//
//	transport local                     no history: replay 0
//	transport bolt [{ size <n> ... }]   history in the ring; size n>0 is replay n
//	                                    (path, bucket_name, cleanup_frequency: no file here, ignored)
//
// Any other transport is refused with the way to get it here.
func (m *Handler) unmarshalTransport(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.Err("transport: give its name: transport local | transport bolt { ... }")
	}
	name := args[0]
	switch name {
	case "local":
		if d.NextBlock(d.Nesting()) {
			return d.Errf("transport local: unrecognized option %q", d.Val())
		}
		zero := 0
		m.Replay = &zero
	case "bolt":
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			switch opt := d.Val(); opt {
			case "size":
				var v string
				if err := caddyargs.One(d, &v); err != nil {
					return err
				}
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return d.Errf("transport bolt size: %q is not a whole number of 0 or more", v)
				}
				if n > 0 { // 0 is Mercure's "unlimited": the ring keeps its default bounds
					m.Replay = &n
				}
			case "path", "bucket_name", "cleanup_frequency":
				// History is kept in the hub's ring (memory or Redis), not in
				// a file: these have nothing to configure.
				if len(d.RemainingArgs()) != 1 {
					return d.ArgErr()
				}
			default:
				return d.Errf("transport bolt: unrecognized option %q%s", opt, suggest.Hint(opt, boltOptions))
			}
		}
	case "redis", "postgres", "kafka", "pulsar":
		return d.Errf("transport %s: sse_mercure keeps updates in the hub's engine; for several instances sharing one hub use the global option `sse { redis <url> }` (Redis), and drop the transport line", name)
	default:
		return d.Errf("transport %q is not known: sse_mercure maps transport local and transport bolt; Redis is the global `sse { redis <url> }` option", name)
	}
	return nil
}

// mercureHeartbeatArg reads a positive duration, or off, or Mercure's 0s
// (off).
func mercureHeartbeatArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	var v string
	if err := caddyargs.One(d, &v); err != nil {
		return 0, err
	}
	if v == "off" {
		return 0, nil
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur < 0 {
		return 0, d.Errf("heartbeat: %q is not a duration such as 15s (or off, or 0s)", v)
	}
	return caddy.Duration(dur), nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
