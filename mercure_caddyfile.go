package caddysse

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("sse_mercure", parseMercure)
	// Next to sse and sse_publish: before encode, so no compressor sits in
	// front of a stream.
	httpcaddyfile.RegisterDirectiveOrder("sse_mercure", httpcaddyfile.Before, "encode")
}

func parseMercure(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(MercureHandler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	sse_mercure [<matcher>] {
//		publisher_jwt  <key> [<alg>]   # verifies publishers' tokens: a secret (HS256 default, HS384, HS512)
//		                               # or a PEM public key (RS*, PS*, ES*, EdDSA); {env.X}, {file./path}
//		subscriber_jwt <key> [<alg>]   # verifies subscribers' tokens
//		jwks_url       <url>           # key set for the roles without a key of their own
//		issuer         <iss>           # checked when set
//		audience       <aud>           # checked when set (the hub's resource identifier for 1.0 tokens)
//		anonymous                      # subscribers without a token get public updates
//		cookie_name    <name>          # default: mercureAccessToken (1.0), then mercureAuthorization (0.x)
//		publish_origins <origin>...    # origins besides the hub's that may publish with the cookie
//		origins        <origin>...|*   # pages of these origins may subscribe and publish with credentials (CORS)
//		hub            <name>          # hub holding the updates (default "default")
//		subscriptions                  # subscription events and the subscriptions API
//		subscriptions_ttl <duration>   # Redis: a crashed instance's subscriptions listed this long (default 30s)
//		max_topics     <count>         # topic fields one update may carry (default 1000)
//		max_topic_length <size>        # bytes per topic (default: no cap but max_body)
//		max_body       <size>          # publish request body (default 1MiB)
//		replay         <count>         # updates kept for resuming, all topics together (default 1000)
//		replay_size    <size>          # bytes kept (default 4MiB)
//		replay_age     <duration>      # drop older updates (default: until evicted)
//		heartbeat      <duration>|off  # idle keep-alive comment (default 15s)
//		write_timeout  <duration>      # a write taking longer drops the subscriber (default 10s)
//		queue          <count>         # updates waiting per subscriber (default 256)
//		max_subscribers <count>        # open streams on this route (default: no limit)
//		protocol_version_compatibility 8  # also accept Mercure 0.x clients (default: 1.0 only)
//	}
func (m *MercureHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "publisher_jwt", "subscriber_jwt":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("%s: give a key and optionally its algorithm: %s <key> [<alg>]", opt, opt)
			}
			kc := &MercureKeyConfig{Key: args[0]}
			if len(args) == 2 {
				kc.Alg = args[1]
			}
			dst := &m.PublisherJWT
			if opt == "subscriber_jwt" {
				dst = &m.SubscriberJWT
			}
			if *dst != nil {
				return d.Errf("%s is given twice", opt)
			}
			*dst = kc
		case "jwks_url":
			if err := oneArg(d, &m.JWKSURL); err != nil {
				return err
			}
		case "issuer":
			if err := oneArg(d, &m.Issuer); err != nil {
				return err
			}
		case "audience":
			if err := oneArg(d, &m.Audience); err != nil {
				return err
			}
		case "cookie_name":
			if err := oneArg(d, &m.CookieName); err != nil {
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
				return d.Errf("publish_origins: %v", err)
			}
		case "origins":
			if err := originsArg(d, &m.Origins); err != nil {
				return err
			}
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
			if err := countArg(d, &m.ProtocolVersionCompatibility, false); err != nil {
				return err
			}
			if m.ProtocolVersionCompatibility != 8 {
				return d.Errf("protocol_version_compatibility: only 8 (Mercure 0.x clients) is supported, not %d", m.ProtocolVersionCompatibility)
			}
		case "hub":
			if err := oneArg(d, &m.Hub); err != nil {
				return err
			}
		case "max_topics":
			if err := countArg(d, &m.MaxTopics, false); err != nil {
				return err
			}
		case "max_topic_length":
			var n int64
			if err := sizeArg(d, &n); err != nil {
				return err
			}
			if n > 1<<20 {
				return d.Errf("max_topic_length: at most 1MiB")
			}
			m.MaxTopicLength = int(n)
		case "max_body":
			if err := sizeArg(d, &m.MaxBody); err != nil {
				return err
			}
		case "replay":
			n := 0
			if err := countArg(d, &n, true); err != nil {
				return err
			}
			m.Replay = &n
		case "replay_size":
			if err := sizeArg(d, &m.ReplaySize); err != nil {
				return err
			}
		case "subscriptions_ttl":
			if err := durationArg(d, &m.SubscriptionsTTL); err != nil {
				return err
			}
		case "replay_age":
			if err := durationArg(d, &m.ReplayAge); err != nil {
				return err
			}
		case "heartbeat":
			dur, err := durationOrOffArg(d)
			if err != nil {
				return err
			}
			m.Heartbeat = &dur
		case "write_timeout":
			if err := durationArg(d, &m.WriteTimeout); err != nil {
				return err
			}
		case "queue":
			if err := countArg(d, &m.Queue, false); err != nil {
				return err
			}
		case "max_subscribers":
			if err := countArg(d, &m.MaxSubscribers, false); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized sse_mercure option %q", opt)
		}
	}
	if m.PublisherJWT == nil && m.JWKSURL == "" {
		return d.Err("sse_mercure: give publisher_jwt or jwks_url: without a key no update can be published")
	}
	if _, err := m.corsPolicy(); err != nil {
		return d.Errf("sse_mercure: %v", err)
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*MercureHandler)(nil)
