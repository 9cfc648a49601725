package mercure

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/ssehub/caddy-sse/internal/suggest/suggesttest"
)

// A misspelt sse_mercure option is answered with the name it most likely
// misspells and the options of its block.
func TestMercureCaddyfileOptionTypoHints(t *testing.T) {
	tests := []struct {
		name, body, want string
		list             []string
	}{
		{"sse_mercure", "anonymus",
			`unrecognized sse_mercure option "anonymus" (did you mean "anonymous"? options: `, mercureOptions},
		{"issuer", "issuer https://example.com {\n\t\tpublsher {\n\t\t\tjwt k\n\t\t}\n\t}",
			`issuer https://example.com: unrecognized option "publsher" (did you mean "publisher"? options: `, issuerOptions},
		{"publisher", "issuer https://example.com {\n\t\tpublisher {\n\t\t\tjwks_url https://idp.example.com/jwks\n\t\t}\n\t}",
			`issuer https://example.com publisher: unrecognized option "jwks_url" (did you mean "jwks_uri"? options: `, verifierOptions},
		{"transport bolt", "transport bolt {\n\t\tszie 100\n\t}",
			`transport bolt: unrecognized option "szie" (did you mean "size"? options: `, boltOptions},
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := ":8080\nsse_mercure {\n\t" + tc.body + "\n}\n"
			_, _, err := adapter.Adapt([]byte(src), nil)
			if err == nil {
				t.Fatalf("accepted:\n%s", src)
			}
			if want := tc.want + strings.Join(tc.list, ", ") + ")"; !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
			}
		})
	}
}

// Each list of sse_mercure options says what its switch accepts; Mercure
// names refused with a reason of their own are not offered.
func TestMercureCaddyfileOptionListsMatchParser(t *testing.T) {
	blocks := map[string]suggesttest.Block{
		"mercureOptions":  {List: mercureOptions, Src: ":8080\nsse_mercure {\n\t%s\n}\n"},
		"issuerOptions":   {List: issuerOptions, Src: ":8080\nsse_mercure {\n\tissuer https://example.com {\n\t\t%s\n\t}\n}\n"},
		"verifierOptions": {List: verifierOptions, Src: ":8080\nsse_mercure {\n\tissuer https://example.com {\n\t\tpublisher {\n\t\t\t%s\n\t\t}\n\t}\n}\n"},
		"boltOptions":     {List: boltOptions, Src: ":8080\nsse_mercure {\n\ttransport bolt {\n\t\t%s\n\t}\n}\n"},
	}
	suggesttest.CheckAccepted(t, blocks, func(src string) error {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
		return err
	})
	suggesttest.CheckLists(t, "caddyfile.go", suggesttest.Lists(blocks),
		"transport_url", "public_urls", "debugger", "playground", "ui", "demo",
		"topic_matcher_cache", "subscriber_list_cache_size")
}
