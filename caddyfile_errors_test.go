package caddysse

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// TestCaddyfileAdaptErrors adapts bad Caddyfiles and checks that the error
// names the option (and, for a topic declared twice, both places).
func TestCaddyfileAdaptErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings the error must contain
	}{
		{
			name: "unknown sse option",
			src: `:8080
sse {
	topic news
	heartbeats 5s
}`,
			want: []string{`unrecognized sse option "heartbeats"`, "Caddyfile:4"},
		},
		{
			name: "unknown topic option",
			src: `:8080
sse {
	topic news {
		replay_count 5
	}
}`,
			want: []string{`unrecognized topic option "replay_count"`, "Caddyfile:4"},
		},
		{
			name: "unknown sse_publish option",
			src: `:8080
sse_publish {
	tokens abc
}`,
			want: []string{`unrecognized sse_publish option "tokens"`, "Caddyfile:3"},
		},
		{
			name: "sse argument outside the block",
			src: `:8080
sse /events news`,
			want: []string{"wrong argument count", "Caddyfile:2"},
		},
		{
			name: "grant without a placeholder",
			src: `:8080
sse {
	topic user/*
	grant X-Sse-Topics
}`,
			want: []string{`grant "X-Sse-Topics" has no placeholder`, "{rp.header.X-Sse-Topics}"},
		},
		{
			name: "grant next to a placeholder topic",
			src: `:8080
sse {
	grant {rp.header.X-Sse-Topics}
	topic user/{rp.header.X-Sse-Topic}
}`,
			want: []string{"grant", `"user/{http.reverse_proxy.header.X-Sse-Topic}" has a placeholder`, "use topic user/*"},
		},
		{
			name: "grant with two arguments",
			src: `:8080
sse {
	topic user/*
	grant {rp.header.A} {rp.header.B}
}`,
			want: []string{"wrong argument count", "Caddyfile:4"},
		},
		{
			name: "topic with no name",
			src: `:8080
sse {
	topic
}`,
			want: []string{"topic", "at least one name", "Caddyfile:3"},
		},
		{
			name: "topic with no name but a block",
			src: `:8080
sse {
	topic {
		replay 5
	}
}`,
			want: []string{"topic", "at least one name"},
		},
		{
			name: "bad topic name characters",
			src: `:8080
sse {
	topic news!
}`,
			want: []string{"topic", `"news!"`, "character", "Caddyfile:3"},
		},
		{
			name: "bad topic name with a space-free unicode letter",
			src: `:8080
sse {
	topic nachrichten/über
}`,
			want: []string{"topic", "nachrichten/über", "character"},
		},
		{
			name: "star inside a segment",
			src: `:8080
sse {
	topic chat/room*
}`,
			want: []string{"topic", `"chat/room*"`, "'*' must be a whole segment"},
		},
		{
			name: "unclosed placeholder",
			src: `:8080
sse {
	topic user/{http.auth.user.id
}`,
			want: []string{"topic", "placeholder"},
		},
		{
			name: "name longer than 256",
			src:  ":8080\nsse {\n\ttopic " + strings.Repeat("a", 257) + "\n}",
			want: []string{"topic", "256"},
		},
		{
			name: "replay negative",
			src: `:8080
sse {
	topic news {
		replay -1
	}
}`,
			want: []string{"replay", `"-1"`, "Caddyfile:4"},
		},
		{
			name: "replay not a number",
			src: `:8080
sse {
	topic news {
		replay many
	}
}`,
			want: []string{"replay", `"many"`},
		},
		{
			name: "replay_size garbage",
			src: `:8080
sse {
	topic news {
		replay_size lots
	}
}`,
			want: []string{"replay_size", `"lots"`, "Caddyfile:4"},
		},
		{
			name: "replay_size zero",
			src: `:8080
sse {
	topic news {
		replay_size 0
	}
}`,
			want: []string{"replay_size", `"0"`},
		},
		{
			name: "replay_age zero",
			src: `:8080
sse {
	topic news {
		replay_age 0
	}
}`,
			want: []string{"replay_age", `"0"`, "Caddyfile:4"},
		},
		{
			name: "replay_age garbage",
			src: `:8080
sse {
	topic news {
		replay_age forever
	}
}`,
			want: []string{"replay_age", `"forever"`},
		},
		{
			name: "replay_on_connect negative",
			src: `:8080
sse {
	topic news {
		replay_on_connect -1
	}
}`,
			want: []string{"replay_on_connect", `"-1"`, "Caddyfile:4"},
		},
		{
			name: "replay_on_connect not a number",
			src: `:8080
sse {
	topic news {
		replay_on_connect all
	}
}`,
			want: []string{"replay_on_connect", `"all"`, "Caddyfile:4"},
		},
		{
			name: "replay_on_connect more than replay keeps",
			src: `:8080
sse {
	topic news {
		replay 10
		replay_on_connect 20
	}
}`,
			want: []string{"topic news", "replay_on_connect 20", "10 events replay keeps", "Caddyfile:3"},
		},
		{
			name: "replay_on_connect with replay 0",
			src: `:8080
sse {
	topic news {
		replay 0
		replay_on_connect 1
	}
}`,
			want: []string{"topic news", "replay_on_connect 1", "0 events replay keeps"},
		},
		{
			name: "replay_on_connect more than the default replay",
			src: `:8080
sse {
	topic news {
		replay_on_connect 1001
	}
}`,
			want: []string{"replay_on_connect 1001", "1000 events replay keeps"},
		},
		{
			name: "same topic twice with different replay_on_connect",
			src: `:8080
sse /a {
	topic news {
		replay_on_connect 5
	}
}
sse /b {
	topic news
}`,
			want: []string{`topic "news"`, "different settings", "replay_on_connect 5", "Caddyfile:3", "Caddyfile:8"},
		},
		{
			name: "max_topics zero",
			src: `:8080
sse {
	topic chat/* {
		max_topics 0
	}
}`,
			want: []string{"max_topics", `"0"`},
		},
		{
			name: "max_topics on literal names only",
			src: `:8080
sse {
	topic news alerts {
		max_topics 10
	}
}`,
			want: []string{"max_topics", "news", "* segments or placeholders"},
		},
		{
			name: "heartbeat garbage",
			src: `:8080
sse {
	topic news
	heartbeat often
}`,
			want: []string{"heartbeat", `"often"`, "Caddyfile:4"},
		},
		{
			name: "heartbeat missing value",
			src: `:8080
sse {
	topic news
	heartbeat
}`,
			want: []string{"wrong argument count", "heartbeat", "Caddyfile:4"},
		},
		{
			name: "retry garbage",
			src: `:8080
sse {
	topic news
	retry soon
}`,
			want: []string{"retry", `"soon"`},
		},
		{
			name: "write_timeout zero",
			src: `:8080
sse {
	topic news
	write_timeout 0s
}`,
			want: []string{"write_timeout", `"0s"`},
		},
		{
			name: "max_subscribers negative",
			src: `:8080
sse {
	topic news
	max_subscribers -5
}`,
			want: []string{"max_subscribers", `"-5"`},
		},
		{
			name: "queue zero",
			src: `:8080
sse {
	topic news
	queue 0
}`,
			want: []string{"queue", `"0"`, "Caddyfile:4"},
		},
		{
			name: "queue_size not a size",
			src: `:8080
sse {
	topic news
	queue_size lots
}`,
			want: []string{"queue_size", `"lots"`, "Caddyfile:4"},
		},
		{
			name: "overload_wait not a duration",
			src: `:8080
sse_publish {
	overload_wait soon
}`,
			want: []string{"overload_wait", "soon"},
		},
		{
			name: "max_topics_per_subscriber zero",
			src: `:8080
sse {
	topic news
	max_topics_per_subscriber 0
}`,
			want: []string{"max_topics_per_subscriber", `"0"`},
		},
		{
			name: "max_topics_per_event zero",
			src: `:8080
sse_publish {
	max_topics_per_event 0
}`,
			want: []string{"max_topics_per_event", `"0"`, "Caddyfile:3"},
		},
		{
			name: "max_topics_per_event not a number",
			src: `:8080
sse_publish {
	max_topics_per_event many
}`,
			want: []string{"max_topics_per_event", `"many"`, "Caddyfile:3"},
		},
		{
			name: "hub with two names",
			src: `:8080
sse {
	topic news
	hub a b
}`,
			// Caddy's ArgErr names the extra token and the line, not the option
			want: []string{"wrong argument count", "'b'", "Caddyfile:4"},
		},
		{
			name: "sse with no topics",
			src: `:8080
sse /events {
	heartbeat 5s
}`,
			want: []string{"sse", "at least one topic"},
		},
		{
			name: "sse with no block",
			src: `:8080
sse /events`,
			want: []string{"sse", "at least one topic"},
		},
		{
			name: "allow_from bad CIDR",
			src: `:8080
sse_publish {
	allow_from 10.0.0.0/33
}`,
			want: []string{"allow_from", `"10.0.0.0/33"`, "Caddyfile:3"},
		},
		{
			name: "allow_from not an address",
			src: `:8080
sse_publish {
	allow_from localhost
}`,
			want: []string{"allow_from", `"localhost"`},
		},
		{
			name: "allow_from with no value",
			src: `:8080
sse_publish {
	allow_from
}`,
			want: []string{"wrong argument count", "allow_from"},
		},
		{
			name: "allow_from none mixed with an address",
			src: `:8080
sse_publish {
	allow_from none 10.0.0.1
}`,
			want: []string{"allow_from", "none"},
		},
		{
			name: "allow_from none mixed with an address on another line",
			src: `:8080
sse_publish {
	allow_from none
	allow_from 10.0.0.1
}`,
			want: []string{"allow_from", "none"},
		},
		{
			name: "allow_from IPv4-mapped range shorter than /96",
			src: `:8080
sse_publish {
	allow_from ::ffff:10.0.0.0/80
}`,
			want: []string{"allow_from", `"::ffff:10.0.0.0/80"`, "shorter than /96", "10.0.0.0/n", "Caddyfile:3"},
		},
		{
			name: "allow_from address with a zone",
			src: `:8080
sse_publish {
	allow_from fe80::1%eth0
}`,
			want: []string{"allow_from", "zone"},
		},
		{
			name: "token missing value",
			src: `:8080
sse_publish {
	token
}`,
			want: []string{"wrong argument count", "token"},
		},
		{
			name: "max_body garbage",
			src: `:8080
sse_publish {
	max_body huge
}`,
			want: []string{"max_body", `"huge"`},
		},
		{
			name: "max_event zero",
			src: `:8080
sse_publish {
	max_event 0
}`,
			want: []string{"max_event", `"0"`},
		},
		{
			name: "same topic twice in one directive with different settings",
			src: `:8080
sse {
	topic news
	topic news {
		replay 5
	}
}`,
			want: []string{`topic "news"`, "different settings", "Caddyfile:3", "Caddyfile:4"},
		},
		{
			name: "same topic in two sites with different settings",
			src: `a.example.com {
	sse /events {
		topic news {
			replay 100
		}
	}
}

b.example.com {
	sse /events {
		topic alerts news {
			replay 50
		}
	}
}`,
			want: []string{`topic "news"`, "different settings", "Caddyfile:3", "Caddyfile:11"},
		},
		{
			name: "same topic in two sites, explicit default against another size",
			src: `a.example.com {
	sse /events {
		topic news {
			replay_size 4MiB
		}
	}
}

b.example.com {
	sse /events {
		topic news {
			replay_size 1MiB
		}
	}
}`,
			want: []string{`topic "news"`, "different settings", "Caddyfile:3", "Caddyfile:11"},
		},
		{
			name: "same pattern in two sites with different replay_age",
			src: `a.example.com {
	sse /events {
		topic chat/* {
			replay_age 1h
		}
	}
}

b.example.com {
	sse /events {
		topic chat/*
	}
}`,
			want: []string{`topic "chat/*"`, "different settings", "Caddyfile:3", "Caddyfile:11"},
		},
		{
			name: "same topic in two sites of the same explicit hub",
			src: `a.example.com {
	sse /events {
		topic news
		hub tenant
	}
}

b.example.com {
	sse /events {
		topic news {
			replay 0
		}
		hub tenant
	}
}`,
			want: []string{`topic "news"`, "different settings", "Caddyfile:3", "Caddyfile:10"},
		},
		{
			name: "same topic in a site and in a nested handle block",
			src: `a.example.com {
	sse /events {
		topic news
	}
}

b.example.com {
	handle /api/* {
		route {
			sse /api/events {
				topic news {
					replay 5
				}
			}
		}
	}
}`,
			want: []string{`topic "news"`, "different settings", "Caddyfile:3", "Caddyfile:11"},
		},
		{
			name: "redis without a URL",
			src: `{
	sse {
		redis
	}
}
:8080
sse {
	topic news
}`,
			want: []string{"redis needs a URL", "Caddyfile:3"},
		},
		{
			name: "unknown redis option",
			src: `{
	sse {
		redis redis://127.0.0.1:6379 {
			prefixx a:
		}
	}
}`,
			want: []string{`unknown redis option "prefixx"`, "Caddyfile:4"},
		},
		{
			name: "redis backlog not a number",
			src: `{
	sse {
		redis redis://127.0.0.1:6379 {
			backlog lots
		}
	}
}`,
			want: []string{"backlog", `"lots"`},
		},
		{
			name: "unknown sse global option",
			src: `{
	sse {
		rediss redis://127.0.0.1:6379
	}
}`,
			want: []string{`unknown sse global option "rediss"`},
		},
		{
			name: "idempotency_window not a duration",
			src: `{
	sse {
		idempotency_window soon
	}
}`,
			want: []string{"idempotency_window", `"soon"`, "Caddyfile:3"},
		},
		{
			name: "idempotency_window zero",
			src: `{
	sse {
		idempotency_window 0s
	}
}`,
			want: []string{"idempotency_window", "positive"},
		},
		{
			name: "idempotency_keys not a positive number",
			src: `{
	sse {
		idempotency_keys 0
	}
}`,
			want: []string{"idempotency_keys", `"0"`, "Caddyfile:3"},
		},
		{
			name: "origin with a path",
			src: `:8080
sse {
	topic news
	origins https://app.example.com/
}`,
			want: []string{"origins", `"https://app.example.com/"`, "no path", "Caddyfile:4"},
		},
		{
			name: "origin without a scheme",
			src: `:8080
sse {
	topic news
	origins app.example.com
}`,
			want: []string{"origins", `"app.example.com"`, "scheme", "Caddyfile:4"},
		},
		{
			name: "origin with a wildcard host",
			src: `:8080
sse {
	topic news
	origins https://*.example.com
}`,
			want: []string{"origins", "wildcards", "Caddyfile:4"},
		},
		{
			name: "origins * mixed with an origin",
			src: `:8080
sse {
	topic news
	origins * https://app.example.com
}`,
			want: []string{"origins", `"*" allows every origin`, "Caddyfile:4"},
		},
		{
			name: "origins with no origin",
			src: `:8080
sse {
	topic news
	origins
}`,
			want: []string{"origins", "Caddyfile:4"},
		},
		{
			name: "presence with no topic",
			src: `:8080
sse {
	topic news
	presence
}`,
			want: []string{"presence", "one topic", "Caddyfile:4"},
		},
		{
			name: "presence to a pattern",
			src: `:8080
sse {
	topic news
	presence online/*
}`,
			want: []string{"presence", `"online/*"`, "Caddyfile:4"},
		},
		{
			name: "presence given twice",
			src: `:8080
sse {
	topic news online
	presence online
	presence news
}`,
			want: []string{"presence is given twice", "Caddyfile:5"},
		},
		{
			name: "unknown presence option",
			src: `:8080
sse {
	topic news online
	presence online {
		interval 1s
	}
}`,
			want: []string{`unrecognized presence option "interval"`, "Caddyfile:5"},
		},
		{
			name: "presence window not a duration",
			src: `:8080
sse {
	topic news online
	presence online {
		window soon
	}
}`,
			want: []string{"window", `"soon"`, "Caddyfile:5"},
		},
		{
			name: "presence max_events not positive",
			src: `:8080
sse {
	topic news online
	presence online {
		max_events 0
	}
}`,
			want: []string{"max_events", `"0"`, "positive", "Caddyfile:5"},
		},
		{
			name: "sse global option given twice",
			src: `{
	sse {
		redis redis://127.0.0.1:6379
	}
	sse {
		redis redis://127.0.0.1:6380
	}
}`,
			want: []string{"sse global option is given twice"},
		},
		{
			name: "unknown sse_mercure option",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	publish_jwt 0123456789abcdef0123456789abcdef
}`,
			want: []string{`unrecognized sse_mercure option "publish_jwt"`, "Caddyfile:4"},
		},
		{
			name: "sse_mercure without a publisher key",
			src: `:8080
sse_mercure {
	subscriber_jwt 0123456789abcdef0123456789abcdef
}`,
			want: []string{"publisher_jwt or jwks_url"},
		},
		{
			name: "sse_mercure publisher_jwt without a key",
			src: `:8080
sse_mercure {
	publisher_jwt
}`,
			want: []string{"publisher_jwt: give a key"},
		},
		{
			name: "sse_mercure publisher_jwt with three arguments",
			src: `:8080
sse_mercure {
	publisher_jwt k HS256 extra
}`,
			want: []string{"publisher_jwt: give a key"},
		},
		{
			name: "sse_mercure publisher_jwt twice",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	publisher_jwt 0123456789abcdef0123456789abcdeg
}`,
			want: []string{"publisher_jwt is given twice"},
		},
		{
			name: "sse_mercure subscriptions with an argument",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	subscriptions yes
}`,
			want: []string{"subscriptions takes no argument"},
		},
		{
			name: "sse_mercure subscriptions_ttl not a duration",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	subscriptions
	subscriptions_ttl soon
}`,
			want: []string{"subscriptions_ttl"},
		},
		{
			name: "sse_mercure anonymous with an argument",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	anonymous yes
}`,
			want: []string{"anonymous takes no argument"},
		},
		{
			name: "sse_mercure bad cookie name",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	cookie_name "a b"
}`,
			want: []string{"cookie_name", "not a valid cookie name"},
		},
		{
			name: "sse_mercure bad publish origin",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	publish_origins *
}`,
			want: []string{"publish_origins"},
		},
		{
			name: "sse_mercure origins without an origin",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	origins
}`,
			want: []string{"origins: give one or more origins", "Caddyfile:4"},
		},
		{
			name: "sse_mercure origins with a path",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	origins https://app.example.com/page
}`,
			want: []string{"origins", "is not an origin", "Caddyfile:4"},
		},
		{
			name: "sse_mercure origins star with another origin",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	origins * https://app.example.com
}`,
			want: []string{"origins", `"*" allows every origin`},
		},
		{
			name: "sse_mercure publish origin that origins does not allow",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	publish_origins https://admin.example.com
	origins https://app.example.com
}`,
			want: []string{"publish_origins: https://admin.example.com is not in origins", "list it in origins too"},
		},
		{
			name: "sse_mercure zero max_topics",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	max_topics 0
}`,
			want: []string{"max_topics", "positive"},
		},
		{
			name: "sse_mercure max_topic_length too large",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	max_topic_length 2MiB
}`,
			want: []string{"max_topic_length", "at most 1MiB"},
		},
		{
			name: "sse_mercure bad max_body",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	max_body lots
}`,
			want: []string{"max_body", "not a size"},
		},
		{
			name: "sse_mercure negative replay",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	replay -1
}`,
			want: []string{"replay", "0 or more"},
		},
		{
			name: "sse_mercure bad replay_age",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	replay_age soon
}`,
			want: []string{"replay_age", "not a duration"},
		},
		{
			name: "sse_mercure bad heartbeat",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	heartbeat never
}`,
			want: []string{"heartbeat", "not a duration"},
		},
		{
			name: "sse_mercure bad write_timeout",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	write_timeout 0s
}`,
			want: []string{"write_timeout", "positive"},
		},
		{
			name: "sse_mercure bad queue",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	queue many
}`,
			want: []string{"queue", "positive"},
		},
		{
			name: "sse_mercure hub without a name",
			src: `:8080
sse_mercure {
	publisher_jwt 0123456789abcdef0123456789abcdef
	hub
}`,
			want: []string{"wrong argument count"},
		},
		{
			name: "sse declaring the reserved mercure topic",
			src: `:8080
sse {
	topic ~mercure
}`,
			want: []string{"~mercure", "reserved"},
		},
	}

	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := adapter.Adapt([]byte(tt.src+"\n"), nil)
			if err == nil {
				t.Fatalf("adapting succeeded, want an error containing %q; got JSON:\n%s", tt.want, out)
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// jsonConfig wraps handler routes (JSON) in an http server config.
func jsonConfig(routes ...string) string {
	return `{"apps": {"http": {"servers": {"srv0": {
		"listen": ["127.0.0.1:0"],
		"routes": [` + strings.Join(routes, ",") + `]
	}}}}}`
}

// TestConfigValidateJSON loads JSON configs through caddy.Validate, which
// provisions and validates every module without starting servers: JSON
// has no Caddyfile adapter to catch mistakes, so the handlers must.
func TestConfigValidateJSON(t *testing.T) {
	const unset = "CADDYSSE_TEST_UNSET_VAR_XYZ"
	if _, ok := os.LookupEnv(unset); ok {
		t.Fatalf("%s must not be set for this test", unset)
	}
	t.Setenv("CADDYSSE_TEST_TOKEN", "s3cret")

	tests := []struct {
		name string
		cfg  string
		want []string // nil: the config must be valid
	}{
		{
			name: "good config",
			cfg: jsonConfig(
				`{"match": [{"path": ["/events"]}], "handle": [{"handler": "sse",
					"topics": [
						{"names": ["news", "prices"], "replay": 10, "replay_size": 65536, "replay_age": 3600000000000},
						{"names": ["chat/*", "user/{http.auth.user.id}"], "max_topics": 50},
						{"names": ["quiet"], "replay": 0}
					],
					"heartbeat": 0, "retry": 3000000000, "max_subscribers": 100,
					"queue": 16, "write_timeout": 5000000000, "max_topics_per_subscriber": 4}]}`,
				// the same topics declared identically (defaults written out count as the same)
				`{"match": [{"path": ["/events2"]}], "handle": [{"handler": "sse",
					"topics": [
						{"names": ["news"], "replay": 10, "replay_size": 65536, "replay_age": 3600000000000},
						{"names": ["quiet"], "replay": 0, "replay_size": 4194304}
					]}]}`,
				// another hub may give the same topic other settings
				`{"match": [{"path": ["/other"]}], "handle": [{"handler": "sse", "hub": "other",
					"topics": [{"names": ["news"], "replay": 99}]}]}`,
				`{"match": [{"path": ["/publish"]}], "handle": [{"handler": "sse_publish",
					"tokens": ["{env.CADDYSSE_TEST_TOKEN}", "literal-token"],
					"allow_from": ["10.0.0.0/8", "192.168.1.7", "::1"],
					"max_body": 2097152, "max_event": 65536}]}`,
				`{"match": [{"path": ["/publish-none"]}], "handle": [{"handler": "sse_publish",
					"hub": "other", "tokens": ["{env.CADDYSSE_TEST_TOKEN}"], "allow_from": ["none"]}]}`,
			),
		},
		{
			name: "same topic with different settings in two handlers of one hub",
			cfg: jsonConfig(
				`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse", "topics": [{"names": ["news"], "replay": 10}]}]}`,
				`{"match": [{"path": ["/b"]}], "handle": [{"handler": "sse", "topics": [{"names": ["news"], "replay": 20}]}]}`,
			),
			want: []string{`topic "news"`, "different settings", "sse handler #1", "sse handler #2"},
		},
		{
			name: "same topic with different settings in two handlers of a named hub",
			cfg: jsonConfig(
				`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse", "hub": "h", "topics": [{"names": ["chat/*"]}]}]}`,
				`{"match": [{"path": ["/b"]}], "handle": [{"handler": "sse", "hub": "h", "topics": [{"names": ["chat/*"], "replay_age": 60000000000}]}]}`,
			),
			want: []string{`topic "chat/*"`, "different settings", "sse handler #1", "sse handler #2"},
		},
		{
			name: "good sse_mercure config",
			cfg: jsonConfig(
				`{"match": [{"path": ["/.well-known/mercure"]}], "handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com",
					"publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"},
					"subscriber_jwt": {"key": "fedcba9876543210fedcba9876543210", "alg": "HS256"},
					"anonymous": true, "replay": 10, "max_topics": 4, "max_topic_length": 100, "max_body": 4096}]}`,
				// a second route of the hub with the same replay settings
				`{"match": [{"path": ["/hub2"]}], "handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com",
					"publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"}, "replay": 10}]}`,
			),
		},
		{
			name: "sse_mercure routes of one hub with different replay settings",
			cfg: jsonConfig(
				`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"}, "replay": 10}]}`,
				`{"match": [{"path": ["/b"]}], "handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"}, "replay": 20}]}`,
			),
			want: []string{"sse_mercure", "~mercure", "same replay settings"},
		},
		{
			name: "sse_mercure negative subscriptions_ttl",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"}, "subscriptions": true, "subscriptions_ttl": -1}]}`),
			want: []string{"subscriptions_ttl must not be negative"},
		},
		{
			name: "sse_mercure without a publisher key",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_mercure", "anonymous": true}]}`),
			want: []string{"publisher_jwt or jwks_url"},
		},
		{
			name: "sse_mercure with a short secret",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "short"}}]}`),
			want: []string{"sse_mercure", "publisher", "at least 32 bytes"},
		},
		{
			name: "sse_mercure with origins",
			cfg: jsonConfig(`{"handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"},
				"origins": ["https://app.example.com"], "publish_origins": ["https://APP.example.com:443"]}]}`),
		},
		{
			name: "sse_mercure bad origin",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"}, "origins": ["app.example.com"]}]}`),
			want: []string{"sse_mercure", "origins", `"app.example.com"`},
		},
		{
			name: "sse_mercure publish origin outside origins",
			cfg: jsonConfig(`{"handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"},
				"origins": ["https://app.example.com"], "publish_origins": ["https://admin.example.com"]}]}`),
			want: []string{"sse_mercure", "publish_origins: https://admin.example.com is not in origins"},
		},
		{
			name: "sse_mercure negative limits",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"}, "max_topic_length": -1}]}`),
			want: []string{"max_topic_length must not be negative"},
		},
		{
			name: "sse_mercure negative replay_age",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_mercure", "issuer": "https://app.example.com", "publisher_jwt": {"key": "0123456789abcdef0123456789abcdef"}, "replay_age": -1}]}`),
			want: []string{"sse_mercure: replay_age must not be negative"},
		},
		{
			name: "token from an unset environment variable",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "tokens": ["{env.` + unset + `}"]}]}`),
			want: []string{"token", "{env." + unset + "}", "empty"},
		},
		{
			name: "negative max_topics_per_event",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "max_topics_per_event": -1}]}`),
			want: []string{"max_topics_per_event", "negative"},
		},
		{
			name: "blank token",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "tokens": ["  "]}]}`),
			want: []string{"token", "empty"},
		},
		{
			name: "negative queue_size",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "queue_size": -1}]}`),
			want: []string{"queue_size", "negative"},
		},
		{
			name: "negative overload_wait",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "overload_wait": -1}]}`),
			want: []string{"overload_wait", "negative"},
		},
		{
			name: "negative queue",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "queue": -1}]}`),
			want: []string{"queue", "negative"},
		},
		{
			name: "negative heartbeat",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "heartbeat": -1}]}`),
			want: []string{"heartbeat", "negative"},
		},
		{
			name: "negative replay",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"], "replay": -1}]}]}`),
			want: []string{"replay", "negative"},
		},
		{
			name: "no topics",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse"}]}`),
			want: []string{"sse", "topic"},
		},
		{
			name: "topic entry with no names",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"replay": 5}]}]}`),
			want: []string{"topic", "name"},
		},
		{
			name: "bad topic name",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["chat/ro*m"]}]}]}`),
			want: []string{`"chat/ro*m"`, "'*' must be a whole segment"},
		},
		{
			name: "allow_from bad CIDR",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "allow_from": ["10.0.0.0/33"]}]}`),
			want: []string{"allow_from", `"10.0.0.0/33"`},
		},
		{
			name: "allow_from IPv4-mapped range shorter than /96",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "allow_from": ["::ffff:0:0/95"]}]}`),
			want: []string{"allow_from", `"::ffff:0:0/95"`, "shorter than /96"},
		},
		{
			name: "allow_from none mixed with an address",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "allow_from": ["none", "10.0.0.1"]}]}`),
			want: []string{"allow_from", "none"},
		},
		{
			name: "negative max_body",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse_publish", "max_body": -1}]}`),
			want: []string{"max_body", "negative"},
		},
		{
			name: "redis URL that is not redis",
			cfg:  `{"apps": {"sse": {"redis": {"url": "http://127.0.0.1:6379"}}}}`,
			want: []string{"sse", "redis url"},
		},
		{
			name: "redis URL from an unset environment variable",
			cfg:  `{"apps": {"sse": {"redis": {"url": "{env.` + unset + `}"}}}}`,
			want: []string{"redis needs a URL"},
		},
		{
			name: "negative idempotency_keys",
			cfg:  `{"apps": {"sse": {"idempotency_keys": -1}}}`,
			want: []string{"idempotency_keys", "negative"},
		},
		{
			name: "negative idempotency_window",
			cfg:  `{"apps": {"sse": {"idempotency_window": -1}}}`,
			want: []string{"idempotency_window", "negative"},
		},
		{
			name: "grant without a placeholder",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["user/*"]}], "grant": "user/1"}]}`),
			want: []string{"sse: grant", `"user/1" has no placeholder`},
		},
		{
			name: "grant next to a placeholder topic",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["user/{http.auth.user.id}"]}], "grant": "{http.request.header.X}"}]}`),
			want: []string{"sse: grant", "has a placeholder"},
		},
		{
			name: "origin with a query",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "origins": ["https://a.example?x=1"]}]}`),
			want: []string{"origins", `"https://a.example?x=1"`, "query"},
		},
		{
			name: "origin with a bad port",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "origins": ["https://a.example:99999"]}]}`),
			want: []string{"origins", "port"},
		},
		{
			name: "presence to a placeholder topic",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "presence": {"topic": "user/{http.auth.user.id}"}}]}`),
			want: []string{"presence", "user/{http.auth.user.id}"},
		},
		{
			name: "negative presence window",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "presence": {"topic": "news", "window": -1}}]}`),
			want: []string{"presence", "window", "negative"},
		},
		{
			name: "one presence topic with two windows",
			cfg: jsonConfig(
				`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse", "topics": [{"names": ["chat", "online"]}], "presence": {"topic": "online", "window": "2s"}}]}`,
				`{"match": [{"path": ["/b"]}], "handle": [{"handler": "sse", "topics": [{"names": ["news"]}], "presence": {"topic": "online"}}]}`,
			),
			want: []string{"presence online", "different window"},
		},
		{
			name: "hub name with a colon",
			cfg:  jsonConfig(`{"handle": [{"handler": "sse", "hub": "a:b", "topics": [{"names": ["news"]}]}]}`),
			want: []string{`hub name "a:b"`},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := new(caddy.Config)
			if err := json.Unmarshal([]byte(tt.cfg), cfg); err != nil {
				t.Fatalf("test config is not JSON: %v", err)
			}
			err := caddy.Validate(cfg)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("config accepted, want an error containing %q", tt.want)
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
