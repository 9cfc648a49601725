package mercure

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/ssehub/caddy-sse/internal/stream"
	"go.uber.org/zap"
)

// logRefusal logs a refused Mercure request, throttled per status, error
// code and kind of reason: the answer's message and, for authorization
// refusals, the reason (why the token is invalid or insufficient; never
// the token). Authorization refusals (a token invalid or insufficient, its
// presentation malformed) at warn, so that they show in Caddy's default
// log; a bare 401 (no token: a client's usual first try) and malformed
// forms at info.
func (m *Handler) logRefusal(r *http.Request, e *mercureRefusal) {
	ok, suppressed := m.refusalLog.Allow(fmt.Sprint(e.Status, " ", e.Code, " ", reasonKind(e.Reason)))
	if !ok {
		return
	}
	level := zap.InfoLevel
	if e.Code != "" && e.Reason != "" || e.Status == http.StatusForbidden {
		level = zap.WarnLevel
	}
	if c := m.logger.Check(level, "mercure request refused"); c != nil {
		fields := []zap.Field{zap.String("method", r.Method), zap.Int("status", e.Status), zap.String("error", e.Msg)}
		if e.Code != "" {
			fields = append(fields, zap.String("code", e.Code))
		}
		if e.Reason != "" {
			fields = append(fields, zap.String("reason", e.Reason))
		}
		fields = append(fields, zap.String("client", stream.ClientForLog(r)), zap.Int("suppressed", suppressed))
		c.Write(fields...)
	}
}

// noTokenReason is the logged reason of a 401 without a token.
func (m *Handler) noTokenReason(r *http.Request) string {
	if hint := m.auth.ignoredTokenHint(r); hint != "" {
		return hint
	}
	return "no token: send Authorization: Bearer <token> or the " + m.auth.cookieNames[0] + " cookie"
}

// reasonKind is the fixed part of a refusal reason, its words before the
// first quoted or numeric detail ("aud does not contain the resource
// identifier "), so that throttling keys come from a closed set: the
// reasons are written by this package, their variable parts quoted or
// numbers.
func reasonKind(reason string) string {
	if i := strings.IndexAny(reason, "\"(0123456789[%"); i >= 0 {
		reason = reason[:i]
	}
	if len(reason) > 64 {
		reason = reason[:64]
	}
	return reason
}
