package caddysse

// The protocols other than caddy-sse's own, each in its package, register
// their handlers here, so `xcaddy build --with github.com/ssehub/caddy-sse`
// brings every directive (as caddy-l4 gathers its modules).
import (
	_ "github.com/ssehub/caddy-sse/mercure" // sse_mercure
)
