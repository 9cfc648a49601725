// Command caddy is Caddy with the caddy-sse module plugged in, so that
// `go run ./cmd/caddy run --config Caddyfile.example` works on any machine
// with Go. Users normally build the same thing with xcaddy (see xcaddy.md).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy modules here
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/ssehub/caddy-sse"
)

func main() {
	caddycmd.Main()
}
