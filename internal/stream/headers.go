package stream

import (
	"fmt"
	"net/http"
)

// plainError answers a subscribe error in plain text, not as an event
// stream, so a browser's EventSource stops instead of retrying.
func PlainError(w http.ResponseWriter, status int, msg string) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
	return nil
}

// streamHeaders sets an event stream's response headers and answers a HEAD
// request with them, reporting true when it has. cacheControl carries
// no-transform, which keeps encode and other proxies from compressing or
// buffering the stream.
func Headers(w http.ResponseWriter, r *http.Request, cacheControl string) bool {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("X-Accel-Buffering", "no")
	if r.Method != http.MethodHead {
		return false
	}
	w.WriteHeader(http.StatusOK)
	return true
}
