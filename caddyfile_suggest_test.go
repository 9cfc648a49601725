package caddysse

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/ssehub/caddy-sse/internal/suggest/suggesttest"
)

// A misspelt option is answered with the name it most likely misspells and
// the options of its block; a name near none gets the list alone.
func TestCaddyfileOptionTypoHints(t *testing.T) {
	tests := []struct {
		name, src, want string
		list            []string // the options the error must list
	}{
		{"sse", ":8080\nsse {\n\ttopic news\n\theartbeet 5s\n}",
			`unrecognized sse option "heartbeet" (did you mean "heartbeat"? options: `, sseOptions},
		{"topic", ":8080\nsse {\n\ttopic news {\n\t\treplay_on_conect 5\n\t}\n}",
			`unrecognized topic option "replay_on_conect" (did you mean "replay_on_connect"? options: `, topicOptions},
		{"presence", ":8080\nsse {\n\ttopic news online\n\tpresence online {\n\t\twindwo 1s\n\t}\n}",
			`unrecognized presence option "windwo" (did you mean "window"? options: `, presenceOptions},
		{"sse_publish", ":8080\nsse_publish {\n\tallow_form 10.0.0.0/8\n}",
			`unrecognized sse_publish option "allow_form" (did you mean "allow_from"? options: `, publishOptions},
		{"global sse", "{\n\tsse {\n\t\tidempotency_keys_ 10\n\t}\n}",
			`unknown sse global option "idempotency_keys_" (did you mean "idempotency_keys"? options: `, globalSSEOptions},
		{"redis", "{\n\tsse {\n\t\tredis redis://127.0.0.1:6379 {\n\t\t\tprefx a:\n\t\t}\n\t}\n}",
			`unknown redis option "prefx" (did you mean "prefix"? options: `, redisOptions},
		{"near none", ":8080\nsse {\n\ttopic news\n\tinterval 5s\n}",
			`unrecognized sse option "interval" (options: `, sseOptions},
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := adapter.Adapt([]byte(tc.src), nil)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			if want := tc.want + strings.Join(tc.list, ", ") + ")"; !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
			}
		})
	}
}

// optionBlocks are the blocks of caddyfile.go, each with its option list.
var optionBlocks = map[string]suggesttest.Block{
	"globalSSEOptions": {List: globalSSEOptions, Src: "{\n\tsse {\n\t\t%s\n\t}\n}\n"},
	"redisOptions":     {List: redisOptions, Src: "{\n\tsse {\n\t\tredis redis://127.0.0.1:6379 {\n\t\t\t%s\n\t\t}\n\t}\n}\n"},
	"sseOptions":       {List: sseOptions, Src: ":8080\nsse {\n\ttopic news\n\t%s\n}\n"},
	"presenceOptions":  {List: presenceOptions, Src: ":8080\nsse {\n\ttopic news online\n\tpresence online {\n\t\t%s\n\t}\n}\n"},
	"topicOptions":     {List: topicOptions, Src: ":8080\nsse {\n\ttopic news {\n\t\t%s\n\t}\n}\n"},
	"publishOptions":   {List: publishOptions, Src: ":8080\nsse_publish {\n\t%s\n}\n"},
}

// Each list of options says what its switch accepts, no more, no less: the
// real parser recognizes every name listed, and the switch has a case for
// each and no other.
func TestCaddyfileOptionListsMatchParsers(t *testing.T) {
	suggesttest.CheckAccepted(t, optionBlocks, func(src string) error {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
		return err
	})
	suggesttest.CheckLists(t, "caddyfile.go", suggesttest.Lists(optionBlocks))
}
