//go:build race

package integration

// raceEnabled makes the harness build Caddy with -race too, so the module's
// code is checked while it serves real connections.
const raceEnabled = true
