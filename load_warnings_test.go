package caddysse

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// Cleanup warns as Start would only after caddy.Validate: a load that
// failed may have left handlers unprovisioned, their topics undeclared.
func TestValidatedOnlyAfterValidate(t *testing.T) {
	end := func(cause error) context.Context {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		return ctx
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"caddy.Validate done", end(errors.New("validation complete")), true},
		{"provisioning failed", end(fmt.Errorf("configuration error: %w", errors.New("x"))), false},
		{"start failed", end(fmt.Errorf("configuration start error: %w", errors.New("x"))), false},
		{"stopped after running", end(errors.New("stopping apps")), false},
		{"cancelled without a cause", end(nil), false},
		{"not ended", context.Background(), false},
		{"never provisioned", nil, false},
	} {
		if got := validated(tc.ctx); got != tc.want {
			t.Errorf("%s: validated = %v, want %v", tc.name, got, tc.want)
		}
	}
}
