package caddysse

import (
	"fmt"
	"strconv"

	"github.com/ssehub/caddy-sse/internal/caddyargs"
	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/redishub"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/ssehub/caddy-sse/internal/suggest"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("sse", parseSSE)
	httpcaddyfile.RegisterHandlerDirective("sse_publish", parsePublish)
	// Before encode, so a compressor never sits in front of a stream and
	// a plain Caddyfile needs no order option.
	httpcaddyfile.RegisterDirectiveOrder("sse", httpcaddyfile.Before, "encode")
	httpcaddyfile.RegisterDirectiveOrder("sse_publish", httpcaddyfile.Before, "encode")
	httpcaddyfile.RegisterGlobalOption("sse", parseGlobalSSE)
}

// The options of the global sse block and of its redis block, listed for
// the hint that follows an unknown one (each switch below has these cases).
var (
	globalSSEOptions = []string{"redis", "idempotency_window", "idempotency_keys"}
	redisOptions     = []string{"prefix", "backlog"}
)

// parseGlobalSSE parses the global option that configures the sse app:
//
//	sse {
//		redis <url> {
//			prefix  <string>  # default "sse:"
//			backlog <n>       # bus entries kept for catching up (default 10000)
//		}
//		idempotency_window <duration>  # Idempotency-Keys remembered this long (default 10m)
//		idempotency_keys   <n>         # at most this many per hub (default 100000)
//	}
func parseGlobalSSE(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the sse global option is given twice")
	}
	app := new(App)
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "redis":
			if app.Redis != nil {
				return nil, d.Err("redis is given twice")
			}
			rc := &redishub.RedisConfig{}
			if !d.NextArg() {
				return nil, d.Err("redis needs a URL: redis://host:6379/0")
			}
			rc.URL = d.Val()
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			for d.NextBlock(1) {
				switch d.Val() {
				case "prefix":
					if err := caddyargs.One(d, &rc.Prefix); err != nil {
						return nil, err
					}
				case "backlog":
					var v string
					if err := caddyargs.One(d, &v); err != nil {
						return nil, err
					}
					n, err := strconv.Atoi(v)
					if err != nil || n < 1 {
						return nil, d.Errf("backlog must be a positive number of events, not %q", v)
					}
					rc.Backlog = n
				default:
					return nil, d.Errf("unknown redis option %q%s", d.Val(), suggest.Hint(d.Val(), redisOptions))
				}
			}
			app.Redis = rc
		case "idempotency_window":
			if err := caddyargs.Duration(d, &app.IdempotencyWindow); err != nil {
				return nil, err
			}
		case "idempotency_keys":
			if err := caddyargs.Count(d, &app.IdempotencyKeys, false); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unknown sse global option %q%s", d.Val(), suggest.Hint(d.Val(), globalSSEOptions))
		}
	}
	return httpcaddyfile.App{Name: "sse", Value: caddyconfig.JSON(app, nil)}, nil
}

// stateKey holds, across all sse directives of one Caddyfile, the topic
// tables per hub, so a topic declared twice with different settings is
// reported with both file:line places at adapt time.
const stateKey = "caddysse.topic_tables"

func parseSSE(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(SSEHandler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	tables, _ := h.State[stateKey].(map[string]*hub.TopicTable)
	if tables == nil {
		tables = make(map[string]*hub.TopicTable)
		h.State[stateKey] = tables
	}
	hubName := handler.Hub
	if hubName == "" {
		hubName = hub.DefaultHubName
	}
	if tables[hubName] == nil {
		tables[hubName] = hub.NewTopicTable()
	}
	for i, tc := range handler.Topics {
		decls, err := tc.decls()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", handler.topicPlaces[i], err)
		}
		for _, d := range decls {
			if err := tables[hubName].Add(d, handler.topicPlaces[i]); err != nil {
				return nil, err
			}
		}
	}
	return handler, nil
}

func parsePublish(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(PublishHandler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// sseOptions are the options of an sse block, listed for the hint that
// follows an unknown one (the switch below has these cases).
var sseOptions = []string{"topic", "hub", "heartbeat", "coalesce", "retry", "write_timeout", "max_subscribers",
	"queue", "queue_size", "max_topics_per_subscriber", "grant", "origins", "presence"}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	sse [<matcher>] {
//		topic <name>... [{
//			replay      <count>     # events kept per topic for resume; 0 = none (default 1000)
//			replay_size <size>      # bytes kept per topic (default 4MiB)
//			replay_age  <duration>  # drop older events (default: until evicted)
//			replay_on_connect <count>  # newest retained events a subscriber without a resume point gets first (default 0)
//			max_topics  <count>     # for * or {placeholder} names: concrete topics held (default 10000)
//		}]
//		hub             <name>      # isolated hub (default "default")
//		heartbeat       <duration>|off  # idle keep-alive comment (default 15s)
//		retry           <duration>  # reconnect delay sent to clients (default: none)
//		max_subscribers <count>     # open streams on this route (default: no limit)
//		queue           <count>     # events waiting per subscriber (default 256)
//		queue_size      <size>      # bytes waiting per subscriber (default 1MiB)
//		write_timeout   <duration>  # no progress this long drops the subscriber (default 10s)
//		max_topics_per_subscriber <count>  # ?topic= values per request (default 64)
//		coalesce        <duration>|off  # gather a busy stream's events into one write (default 10ms)
//		grant           <placeholder>   # topics the app grants per request, e.g. {rp.header.X-Sse-Topics}
//		origins         <origin>...|*   # pages of these origins may subscribe with credentials; * any page, without (default: none, no CORS)
//		presence        <topic> [{      # publish join/leave events of this route's topics there
//			window     <duration>       # at most one flush of presence events per window (default 1s)
//			max_users  <count>          # users named per topic per window (default 100)
//			max_events <count>          # presence events per window, all topics together (default 100)
//		}]
//	}
//
// A name is 1-256 characters from A-Z a-z 0-9 . _ ~ : @ / -; a segment "*"
// matches any one segment; a placeholder is resolved per subscriber.
func (h *SSEHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "topic":
			place := fmt.Sprintf("%s:%d", d.File(), d.Line())
			tc := TopicConfig{Names: d.RemainingArgs()}
			if len(tc.Names) == 0 {
				return d.Errf("topic: at least one name is required")
			}
			for _, n := range tc.Names {
				if err := hub.ValidateDeclName(n); err != nil {
					return d.Errf("%v", err)
				}
			}
			for tn := d.Nesting(); d.NextBlock(tn); {
				if err := unmarshalTopicOption(d, &tc); err != nil {
					return err
				}
			}
			h.Topics = append(h.Topics, tc)
			h.topicPlaces = append(h.topicPlaces, place)
		case "hub":
			if err := caddyargs.One(d, &h.Hub); err != nil {
				return err
			}
		case "heartbeat":
			dur, err := caddyargs.DurationOrOff(d)
			if err != nil {
				return err
			}
			h.Heartbeat = &dur
		case "coalesce":
			dur, err := caddyargs.DurationOrOff(d)
			if err != nil {
				return err
			}
			h.Coalesce = &dur
		case "retry":
			if err := caddyargs.Duration(d, &h.Retry); err != nil {
				return err
			}
		case "write_timeout":
			if err := caddyargs.Duration(d, &h.WriteTimeout); err != nil {
				return err
			}
		case "max_subscribers":
			if err := caddyargs.Count(d, &h.MaxSubscribers, false); err != nil {
				return err
			}
		case "queue":
			if err := caddyargs.Count(d, &h.Queue, false); err != nil {
				return err
			}
		case "queue_size":
			if err := caddyargs.Size(d, &h.QueueSize); err != nil {
				return err
			}
		case "max_topics_per_subscriber":
			if err := caddyargs.Count(d, &h.MaxTopicsPerSubscriber, false); err != nil {
				return err
			}
		case "grant":
			if err := caddyargs.One(d, &h.Grant); err != nil {
				return err
			}
		case "origins":
			if err := caddyargs.Origins(d, &h.Origins); err != nil {
				return err
			}
		case "presence":
			if err := unmarshalPresence(d, h); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized sse option %q%s", opt, suggest.Hint(opt, sseOptions))
		}
	}
	if len(h.Topics) == 0 {
		return d.Err("sse: declare at least one topic")
	}
	if h.Grant != "" {
		var decls []hub.TopicDecl
		for _, tc := range h.Topics {
			ds, err := tc.decls()
			if err != nil {
				return d.Errf("%v", err)
			}
			decls = append(decls, ds...)
		}
		if err := validateGrant(h.Grant, decls); err != nil {
			return d.Errf("%v", err)
		}
	}
	return nil
}

// presenceOptions are the options of a presence block, listed for the
// hint that follows an unknown one (the switch below has these cases).
var presenceOptions = []string{"window", "max_users", "max_events"}

func unmarshalPresence(d *caddyfile.Dispenser, h *SSEHandler) error {
	if h.Presence != nil {
		return d.Err("presence is given twice")
	}
	pc := &PresenceConfig{}
	if err := caddyargs.One(d, &pc.Topic); err != nil {
		return d.Errf("presence: give one topic to publish join and leave events to")
	}
	if err := validPresenceTopic(pc.Topic); err != nil {
		return d.Errf("%v", err)
	}
	for n := d.Nesting(); d.NextBlock(n); {
		switch opt := d.Val(); opt {
		case "window":
			if err := caddyargs.Duration(d, &pc.Window); err != nil {
				return err
			}
		case "max_users":
			if err := caddyargs.Count(d, &pc.MaxUsers, false); err != nil {
				return err
			}
		case "max_events":
			if err := caddyargs.Count(d, &pc.MaxEvents, false); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized presence option %q%s", opt, suggest.Hint(opt, presenceOptions))
		}
	}
	h.Presence = pc
	return nil
}

// topicOptions are the options of a topic block, listed for the hint that
// follows an unknown one (the switch below has these cases).
var topicOptions = []string{"replay", "replay_size", "replay_age", "replay_on_connect", "max_topics"}

func unmarshalTopicOption(d *caddyfile.Dispenser, tc *TopicConfig) error {
	switch opt := d.Val(); opt {
	case "replay":
		n := 0
		if err := caddyargs.Count(d, &n, true); err != nil {
			return err
		}
		tc.Replay = &n
	case "replay_size":
		var v string
		if err := caddyargs.One(d, &v); err != nil {
			return err
		}
		size, err := humanize.ParseBytes(v)
		if err != nil || size == 0 || size > 1<<40 {
			return d.Errf("replay_size: %q is not a size such as 4MiB", v)
		}
		tc.ReplaySize = int64(size)
	case "replay_age":
		if err := caddyargs.Duration(d, &tc.ReplayAge); err != nil {
			return err
		}
	case "replay_on_connect":
		if err := caddyargs.Count(d, &tc.ReplayOnConnect, true); err != nil {
			return err
		}
	case "max_topics":
		if err := caddyargs.Count(d, &tc.MaxTopics, false); err != nil {
			return err
		}
	default:
		return d.Errf("unrecognized topic option %q%s", opt, suggest.Hint(opt, topicOptions))
	}
	return nil
}

// publishOptions are the options of an sse_publish block, listed for the
// hint that follows an unknown one (the switch below has these cases).
var publishOptions = []string{"token", "allow_from", "max_body", "max_event", "hub", "body_timeout",
	"stream_idle_timeout", "overload_wait", "max_topics_per_event"}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	sse_publish [<matcher>] {
//		token      <token>          # repeatable; accepted as "Authorization: Bearer <token>"
//		allow_from <ranges...>|none # client addresses allowed without a token (default: loopback,
//		                            # or none once a token is set)
//		max_body   <size>           # whole request, not a held event stream (default 1MiB)
//		max_event  <size>           # one event's data (default 256KiB)
//		hub        <name>           # hub to publish to (default "default")
//		body_timeout        <duration>  # time to read a whole body (default 30s)
//		stream_idle_timeout <duration>  # silence allowed in a held event stream (default 5m)
//		overload_wait <duration>        # wait for room while subscribers are behind, then 503 (default 5s)
//		max_topics_per_event <count>    # distinct topics one event may name; 429 beyond (default 64)
//	}
func (p *PublishHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "token":
			var v string
			if err := caddyargs.One(d, &v); err != nil {
				return err
			}
			p.Tokens = append(p.Tokens, v)
		case "allow_from":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if _, err := parseAllowFrom(args, false); err != nil {
				return d.Errf("%v", err)
			}
			p.AllowFrom = append(p.AllowFrom, args...)
		case "max_body", "max_event":
			var v string
			if err := caddyargs.One(d, &v); err != nil {
				return err
			}
			size, err := humanize.ParseBytes(v)
			if err != nil || size == 0 || size > 1<<40 {
				return d.Errf("%s: %q is not a size such as 1MiB", opt, v)
			}
			if opt == "max_body" {
				p.MaxBody = int64(size)
			} else {
				p.MaxEvent = int64(size)
			}
		case "hub":
			if err := caddyargs.One(d, &p.Hub); err != nil {
				return err
			}
		case "body_timeout":
			if err := caddyargs.Duration(d, &p.BodyTimeout); err != nil {
				return err
			}
		case "stream_idle_timeout":
			if err := caddyargs.Duration(d, &p.StreamIdleTimeout); err != nil {
				return err
			}
		case "overload_wait":
			if err := caddyargs.Duration(d, &p.OverloadWait); err != nil {
				return err
			}
		case "max_topics_per_event":
			if err := caddyargs.Count(d, &p.MaxTopicsPerEvent, false); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized sse_publish option %q%s", opt, suggest.Hint(opt, publishOptions))
		}
	}
	if _, err := parseAllowFrom(p.AllowFrom, false); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*SSEHandler)(nil)
	_ caddyfile.Unmarshaler = (*PublishHandler)(nil)
)
