package caddysse

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/dustin/go-humanize"
	"go.uber.org/zap"
)

// Logs: one info line per handler when it is provisioned; warnings for
// dropped subscribers and refused publishes, at most one per reason per
// second with a count of those left out; debug for subscribe and
// unsubscribe. Nothing at info per event.

// describeTopics renders declarations with their ring limits, humanized,
// for the provision line: "news (replay 1000, 4.0 MiB, 1h0m0s)".
func describeTopics(decls []hub.TopicDecl) []string {
	out := make([]string, len(decls))
	for i, d := range decls {
		parts := []string{fmt.Sprintf("replay %d", d.Ring.Replay), humanize.IBytes(uint64(d.Ring.ReplaySize))}
		if d.Ring.ReplayAge > 0 {
			parts = append(parts, d.Ring.ReplayAge.String())
		}
		if !d.IsLiteral() {
			parts = append(parts, fmt.Sprintf("max_topics %d", d.MaxTopics))
		}
		out[i] = d.Name + " (" + strings.Join(parts, ", ") + ")"
	}
	return out
}

// logRefusal warns, throttled per status, that a publish was refused.
func (p *PublishHandler) logRefusal(r *http.Request, e *PublishError) {
	ok, suppressed := p.refusalLog.Allow(fmt.Sprint(e.Status))
	if !ok {
		return
	}
	if c := p.logger.Check(zap.WarnLevel, "publish refused"); c != nil {
		c.Write(zap.Int("status", e.Status), zap.String("reason", e.Msg), zap.String("field", e.Field),
			zap.String("client", stream.ClientForLog(r)), zap.Int("suppressed", suppressed))
	}
}
