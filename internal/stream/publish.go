package stream

import (
	"errors"
	"net/http"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// Defaults both routes' publish sides share (docs/reference.md).
const (
	// DefaultBodyTimeout is the time allowed to read a whole request body.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultOverloadWait is how long a publish may wait for room while
	// subscribers that are reading are behind.
	DefaultOverloadWait = 5 * time.Second
)

// EngineErrorStatus is the answer to a publish the engine refused: the
// HTTP status, and the request field at fault when there is one. 503 says
// "try again" (engine unavailable, overloaded); 504 that the publish may or
// may not have happened.
func EngineErrorStatus(err error) (status int, field string) {
	switch {
	case errors.Is(err, hub.ErrTooManyTopics):
		return http.StatusTooManyRequests, "topic"
	case errors.Is(err, hub.ErrOutcomeUnknown):
		return http.StatusGatewayTimeout, ""
	case errors.Is(err, hub.ErrIdempotencyConflict):
		return http.StatusUnprocessableEntity, "Idempotency-Key"
	case errors.Is(err, hub.ErrIdempotencyInProgress):
		return http.StatusConflict, "Idempotency-Key"
	}
	return http.StatusServiceUnavailable, ""
}
