// Package caddyargs reads the Caddyfile arguments the routes' parsers share
// (sizes, counts, durations, origins), each with the same checks and error
// wording everywhere.
package caddyargs

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"
)

// Size reads one humanized size (64KiB, 4MB) of at most 1TiB.
func Size(d *caddyfile.Dispenser, dst *int64) error {
	opt := d.Val()
	var v string
	if err := One(d, &v); err != nil {
		return err
	}
	size, err := humanize.ParseBytes(v)
	if err != nil || size == 0 || size > hub.MaxSize {
		return d.Errf("%s: %q is not a size such as 1MiB", opt, v)
	}
	*dst = int64(size)
	return nil
}

// Origins reads the origins option (sse and sse_mercure, internal/stream/cors.go): one
// or more origins, or *; given again, the lists add up.
func Origins(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Err("origins: give one or more origins (https://app.example.com) or *")
	}
	*dst = append(*dst, args...)
	if _, err := stream.NewCORSPolicy(*dst); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// One reads the option's one argument.
func One(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Count reads a count: a positive integer, or 0 when zeroOK.
func Count(d *caddyfile.Dispenser, dst *int, zeroOK bool) error {
	opt := d.Val()
	var v string
	if err := One(d, &v); err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if zeroOK && (err != nil || n < 0) {
		return d.Errf("%s: %q is not a whole number of 0 or more", opt, v)
	}
	if !zeroOK && (err != nil || n <= 0) {
		return d.Errf("%s: %q is not a positive whole number", opt, v)
	}
	*dst = n
	return nil
}

// Duration reads the option's one argument as a positive duration.
func Duration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	var v string
	if err := One(d, &v); err != nil {
		return err
	}
	dur, err := PositiveDuration(d, opt, v)
	if err != nil {
		return err
	}
	*dst = dur
	return nil
}

// DurationOrOff reads a positive duration or "off", which is 0.
func DurationOrOff(d *caddyfile.Dispenser) (caddy.Duration, error) {
	opt := d.Val()
	var v string
	if err := One(d, &v); err != nil {
		return 0, err
	}
	if v == "off" {
		return 0, nil
	}
	return PositiveDuration(d, opt, v)
}

// PositiveDuration parses v, the argument of opt, as a positive duration.
func PositiveDuration(d *caddyfile.Dispenser, opt, v string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s: %q is not a duration such as 15s", opt, v)
	}
	if dur <= 0 {
		return 0, d.Errf("%s: %q must be a positive duration", opt, v)
	}
	return caddy.Duration(dur), nil
}
