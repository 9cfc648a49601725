// Command mercure-caddy is Caddy with Mercure's own hub module, built only as
// a black-box test oracle for sse_mercure (integration/mercure_oracle*_test.go).
// It lives in its own module so that the product's go.mod never requires
// anything of Mercure; nothing here is shipped.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/dunglas/mercure/caddy"
)

func main() {
	caddycmd.Main()
}
