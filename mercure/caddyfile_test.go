package mercure

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// A Mercure Caddyfile's options either mean what they mean in Mercure or
// are refused with the way to get it here.
func TestMercureCaddyfileErrors(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	issuer := "issuer https://example.com {\n\t\tpublisher {\n\t\t\tjwt " + key + "\n\t\t}\n\t}\n\t"
	cases := []struct {
		name, body string
		want       []string
	}{
		{"implicit issuer in modern mode", "publisher_jwt " + key, []string{"implicit issuer", "protocol_version_compatibility 8", "issuer <iss>"}},
		{"issuer without identifier", "issuer {\n\t\tpublisher {\n\t\t\tjwt " + key + "\n\t\t}\n\t}", []string{"issuer: give the issuer identifier"}},
		{"issuer block without keys", "issuer https://example.com {\n\t\tauthorization_server\n\t}", []string{"give a publisher or subscriber block"}},
		{"unknown issuer option", "issuer https://example.com {\n\t\tpublisher_jwt x\n\t}", []string{`unrecognized option "publisher_jwt"`}},
		{"jwt and jwks_uri", "issuer https://example.com {\n\t\tpublisher {\n\t\t\tjwt " + key + "\n\t\t\tjwks_uri https://idp.example.com/jwks\n\t\t}\n\t}", []string{"mutually exclusive"}},
		{"empty publisher", "issuer https://example.com {\n\t\tpublisher {\n\t\t}\n\t}", []string{"give jwt <key>"}},
		{"publisher without a block", "issuer https://example.com {\n\t\tpublisher " + key + "\n\t}", []string{"takes a block"}},
		{"two issuers of one name", issuer + "issuer https://example.com {\n\t\tsubscriber {\n\t\t\tjwt " + key + "\n\t\t}\n\t}", []string{"declared twice"}},
		{"transport redis", issuer + "transport redis {\n\t\taddress localhost:6379\n\t}", []string{"sse { redis <url> }"}},
		{"unknown transport", issuer + "transport sqlite", []string{`transport "sqlite" is not known`}},
		{"unknown bolt option", issuer + "transport bolt {\n\t\tcompression on\n\t}", []string{`transport bolt: unrecognized option "compression"`}},
		{"transport_url", issuer + "transport_url bolt://mercure.db", []string{"removed in Mercure 1.0"}},
		{"public_urls", issuer + "public_urls https://hub.example.com", []string{"public_urls is not offered"}},
		{"playground", issuer + "playground", []string{"no debugger or playground"}},
		{"topic_matcher_cache", issuer + "topic_matcher_cache 100", []string{"topic_matcher_cache"}},
		{"resource identifier not absolute", issuer + "resource_identifier hub.example.com", []string{"not an absolute URI"}},
		{"resource identifier and audience", issuer + "resource_identifier https://a.example/.well-known/mercure\n\taudience https://b.example", []string{"former name"}},
		{"bad heartbeat", issuer + "heartbeat soon", []string{"heartbeat"}},
		{"protocol_version_compatibility 7", issuer + "protocol_version_compatibility 7", []string{"only 8"}},
		{"unknown option", issuer + "publisher_jwt_key x", []string{`unrecognized sse_mercure option "publisher_jwt_key"`}},
		{"zero max_token_details", issuer + "max_token_details 0", []string{"max_token_details"}},
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := ":8080\nsse_mercure {\n\t" + c.body + "\n}\n"
			out, _, err := adapter.Adapt([]byte(src), nil)
			if err == nil {
				t.Fatalf("accepted:\n%s\n%s", src, out)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Mercure's official Caddyfile, with mercure renamed, adapts.
func TestMercureCaddyfileFromMercure(t *testing.T) {
	src := `localhost {
	encode zstd gzip
	sse_mercure {
		transport bolt {
			path /data/mercure.db
		}
		issuer https://example.com {
			publisher {
				jwt {env.MERCURE_PUBLISHER_JWT_KEY} {env.MERCURE_PUBLISHER_JWT_ALG}
			}
			subscriber {
				jwt {env.MERCURE_SUBSCRIBER_JWT_KEY} {env.MERCURE_SUBSCRIBER_JWT_ALG}
			}
		}
		cors_origins *
		anonymous
		subscriptions
	}
	respond /healthz 200
	respond "Not Found" 404
}
`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"issuer":"https://example.com"`, `"origins":["*"]`, `"anonymous":true`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
}
