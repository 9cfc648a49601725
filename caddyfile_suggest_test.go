package caddysse

import (
	"fmt"
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

// optionTemplates place one option (%s) in the block whose list it is in.
var optionTemplates = map[string]struct {
	list []string
	src  string
}{
	"globalSSEOptions": {globalSSEOptions, "{\n\tsse {\n\t\t%s\n\t}\n}\n"},
	"redisOptions":     {redisOptions, "{\n\tsse {\n\t\tredis redis://127.0.0.1:6379 {\n\t\t\t%s\n\t\t}\n\t}\n}\n"},
	"sseOptions":       {sseOptions, ":8080\nsse {\n\ttopic news\n\t%s\n}\n"},
	"presenceOptions":  {presenceOptions, ":8080\nsse {\n\ttopic news online\n\tpresence online {\n\t\t%s\n\t}\n}\n"},
	"topicOptions":     {topicOptions, ":8080\nsse {\n\ttopic news {\n\t\t%s\n\t}\n}\n"},
	"publishOptions":   {publishOptions, ":8080\nsse_publish {\n\t%s\n}\n"},
}

// checkOptionsAccepted feeds every listed option to the parser (without
// its arguments: an error about those is fine) and checks that none is
// unrecognized: a list offers nothing its parser refuses.
func checkOptionsAccepted(t *testing.T, templates map[string]struct {
	list []string
	src  string
}) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	for name, tpl := range templates {
		for _, opt := range tpl.list {
			src := fmt.Sprintf(tpl.src, opt)
			_, _, err := adapter.Adapt([]byte(src), nil)
			if err != nil && strings.Contains(err.Error(), fmt.Sprintf("option %q", opt)) { // "unrecognized/unknown ... option"
				t.Errorf("%s lists %q, which its parser does not recognize: %v", name, opt, err)
			}
		}
	}
}

// Each list of options says what its switch accepts, no more, no less.
func TestCaddyfileOptionListsMatchParsers(t *testing.T) {
	checkOptionsAccepted(t, optionTemplates)
	lists := map[string][]string{}
	for name, tpl := range optionTemplates {
		lists[name] = tpl.list
	}
	suggesttest.CheckLists(t, "caddyfile.go", lists)
}
