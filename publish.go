package caddysse

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/logthrottle"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Defaults of the sse_publish handler.
const (
	DefaultMaxBody           = 1 << 20
	DefaultMaxEvent          = 256 << 10
	DefaultStreamIdleTimeout = 5 * time.Minute
)

// DefaultMaxTopicsPerEvent caps the topics one published event names
// (docs/security.md, "Who may publish": 429 beyond it).
const DefaultMaxTopicsPerEvent = 64

// PublishHandler accepts events over HTTP POST and publishes them to the
// topics of its hub.
type PublishHandler struct {
	// Hub to publish to. Default: "default".
	Hub string `json:"hub,omitempty"`
	// Bearer tokens accepted (placeholders such as {env.X} are resolved
	// at load). A request carrying a wrong bearer token is refused.
	Tokens []string `json:"tokens,omitempty"`
	// Client addresses (IPs or CIDR ranges) allowed without a token; the
	// single value "none" allows none. Default: loopback only when no token
	// is configured, none once one is. A request that carries forwarding
	// headers (X-Forwarded-For, Forwarded, X-Real-IP, Via) but did not come
	// through one of the server's trusted_proxies is a relay whose client is
	// unknown: no range admits it but one that admits everyone (/0).
	// IPv4-mapped IPv6 ranges are read as their IPv4 ranges.
	AllowFrom []string `json:"allow_from,omitempty"`
	// Largest request body, except a held text/event-stream. Default: 1MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// Largest data of one event. Default: 256KiB.
	MaxEvent int64 `json:"max_event,omitempty"`
	// Time allowed to read a whole body (not a held event stream), so a
	// slow-dripping publisher cannot hold a request forever. Default: 30s.
	BodyTimeout caddy.Duration `json:"body_timeout,omitempty"`
	// Longest silence allowed inside a held text/event-stream body.
	// Default: 5m.
	StreamIdleTimeout caddy.Duration `json:"stream_idle_timeout,omitempty"`
	// How long a publish waits for room while subscribers that are
	// reading are behind (the machine cannot deliver as fast as
	// publishers publish); past it the answer is 503 with Retry-After and
	// nothing is published. Default: 5s.
	OverloadWait caddy.Duration `json:"overload_wait,omitempty"`
	// Distinct topics one event may name; beyond it the publish is refused
	// with 429 and nothing is published. It bounds the work (and the
	// pattern topics created) per event. Default: 64.
	MaxTopicsPerEvent int `json:"max_topics_per_event,omitempty"`

	tokens     [][]byte
	allowFrom  []netip.Prefix
	hub        hub.Engine
	table      *hub.TopicTable
	logger     *zap.Logger
	refusalLog logthrottle.Throttle // warnings for refused publishes (logs.go)
}

// CaddyModule returns the Caddy module information.
func (*PublishHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sse_publish", New: func() caddy.Module { return new(PublishHandler) }}
}

// Provision resolves tokens and address ranges and finds the hub.
func (p *PublishHandler) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	if p.Hub == "" {
		p.Hub = hub.DefaultHubName
	}
	if p.MaxBody == 0 {
		p.MaxBody = DefaultMaxBody
	}
	if p.MaxEvent == 0 {
		p.MaxEvent = DefaultMaxEvent
	}
	if p.BodyTimeout == 0 {
		p.BodyTimeout = caddy.Duration(stream.DefaultBodyTimeout)
	}
	if p.StreamIdleTimeout == 0 {
		p.StreamIdleTimeout = caddy.Duration(DefaultStreamIdleTimeout)
	}
	if p.OverloadWait == 0 {
		p.OverloadWait = caddy.Duration(stream.DefaultOverloadWait)
	}
	if p.MaxTopicsPerEvent == 0 {
		p.MaxTopicsPerEvent = DefaultMaxTopicsPerEvent
	}
	repl := caddy.NewReplacer()
	for i, t := range p.Tokens {
		v := strings.TrimSpace(repl.ReplaceAll(t, ""))
		if v == "" {
			if strings.Contains(t, "{") {
				return fmt.Errorf("sse_publish: token #%d (%s) is empty once resolved; is the environment variable set?", i+1, t)
			}
			return fmt.Errorf("sse_publish: token #%d is empty", i+1)
		}
		p.tokens = append(p.tokens, []byte(v))
	}
	allow, err := parseAllowFrom(p.AllowFrom, len(p.tokens) > 0)
	if err != nil {
		return err
	}
	p.allowFrom = allow
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	p.hub, p.table, err = app.Hub(p.Hub)
	if err != nil {
		return err
	}
	app.publisherOf(p.Hub)
	p.logger.Info("sse_publish handler ready",
		zap.String("hub", p.Hub),
		zap.Int("tokens", len(p.tokens)),
		zap.Stringers("allow_from", p.allowFrom),
		zap.String("max_body", humanize.IBytes(uint64(p.MaxBody))),
		zap.String("max_event", humanize.IBytes(uint64(p.MaxEvent))),
		zap.Stringer("overload_wait", time.Duration(p.OverloadWait)),
		zap.Int("max_topics_per_event", p.MaxTopicsPerEvent))
	return nil
}

// Validate checks the handler's settings.
func (p *PublishHandler) Validate() error {
	if p.MaxBody < 0 || p.MaxEvent < 0 || p.MaxBody > hub.MaxSize || p.MaxEvent > hub.MaxSize {
		return errors.New("sse_publish: max_body and max_event must not be negative or over 1TiB")
	}
	if p.BodyTimeout < 0 || p.StreamIdleTimeout < 0 || p.OverloadWait < 0 {
		return errors.New("sse_publish: body_timeout, stream_idle_timeout and overload_wait must not be negative")
	}
	if p.MaxTopicsPerEvent < 0 {
		return errors.New("sse_publish: max_topics_per_event must not be negative")
	}
	return nil
}

// ServeHTTP publishes the events of a POST body. Every answer, errors
// included, is JSON.
func (p *PublishHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return p.refuse(w, r, &PublishError{Status: http.StatusMethodNotAllowed, Msg: "publish with POST"})
	}
	if perr := p.authorize(r); perr != nil {
		if perr.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sse_publish"`)
		}
		return p.refuse(w, r, perr)
	}
	// The query carries the topics of text/plain and event-stream bodies;
	// parse it strictly so a malformed ?topic= is an error, not ignored.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return p.refuse(w, r, badRequest("query", "malformed query: %v", err))
	}
	mediaType := "text/plain"
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return p.refuse(w, r, &PublishError{Status: http.StatusUnsupportedMediaType, Field: "Content-Type", Msg: "malformed Content-Type: " + err.Error()})
		}
		mediaType = mt
	}
	idemKey, kerr := idempotencyKey(r, mediaType)
	if kerr != nil {
		return p.refuse(w, r, kerr)
	}
	if mediaType == "text/event-stream" {
		return p.publishStream(w, r, query)
	}

	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(time.Duration(p.BodyTimeout)))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.MaxBody))
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return p.refuse(w, r, tooLarge("", "body is larger than max_body (%d bytes)", p.MaxBody))
		case errors.Is(err, os.ErrDeadlineExceeded):
			return p.refuse(w, r, &PublishError{Status: http.StatusRequestTimeout,
				Msg: fmt.Sprintf("body not received within body_timeout (%v)", time.Duration(p.BodyTimeout))})
		}
		return p.refuse(w, r, badRequest("", "reading body: %v", err))
	}
	var msgs []*hub.Message
	var perr *PublishError
	array := false
	switch mediaType {
	case "application/json":
		msgs, array, perr = parseJSONBody(body, p.MaxEvent)
	case "application/x-www-form-urlencoded":
		msgs, perr = parseFormBody(body, p.MaxEvent)
	case "text/plain":
		msgs, perr = parseTextBody(body, query, p.MaxEvent)
	default:
		perr = &PublishError{Status: http.StatusUnsupportedMediaType, Field: "Content-Type",
			Msg: fmt.Sprintf("Content-Type %s is not accepted; use application/json, application/x-www-form-urlencoded, text/plain or text/event-stream", mediaType)}
	}
	if perr != nil {
		return p.refuse(w, r, perr)
	}
	pubs := make([]hub.Publication, len(msgs))
	for i, m := range msgs {
		prefix := ""
		if array {
			prefix = fmt.Sprintf("[%d].", i)
		}
		refs, perr := p.resolve(m.Topics, prefix)
		if perr != nil {
			return p.refuse(w, r, perr)
		}
		pubs[i] = hub.Publication{Message: m, Topics: refs}
	}
	out, err := p.publish(r, pubs, hub.PublishOptions{IdempotencyKey: idemKey, Wait: time.Duration(p.OverloadWait)})
	if err != nil {
		return p.refuse(w, r, hubError(err))
	}
	if out.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	results := out.Results
	if array {
		return writeJSON(w, http.StatusOK, results)
	}
	return writeJSON(w, http.StatusOK, results[0])
}

// streamBatch caps how many events of a held stream are published at once.
const streamBatch = 256

// streamSummary answers a held text/event-stream publish. It is the same
// size after a million events as after one: a held stream may run for
// hours, and one result per event would grow without bound
// (docs/publishing.md).
type streamSummary struct {
	Published int64  `json:"published"`
	FirstID   string `json:"first_id,omitempty"`
	LastID    string `json:"last_id,omitempty"`
	Delivered int64  `json:"delivered"`
}

func (s *streamSummary) add(results []hub.PublishResult) {
	if len(results) == 0 {
		return
	}
	if s.Published == 0 {
		s.FirstID = results[0].ID
	}
	s.LastID = results[len(results)-1].ID
	s.Published += int64(len(results))
	for _, r := range results {
		s.Delivered += int64(r.Delivered)
	}
}

// publishStream publishes each event of a text/event-stream body as soon as
// the read that brought it is parsed. max_body does not apply (the publisher may hold the request
// open); max_event caps each event. Memory stays flat however long the
// stream is held: the parser reuses its buffers, the batch slice is reused,
// and what is kept of the results is the summary.
func (p *PublishHandler) publishStream(w http.ResponseWriter, r *http.Request, query url.Values) error {
	topics := query["topic"]
	refs, perr := p.resolve(topics, "")
	if perr != nil {
		return p.refuse(w, r, perr)
	}
	var sum streamSummary
	// Events are published in batches: all that one read of the body
	// brought, up to streamBatch. One hub call (one Redis round trip) per
	// batch, and no event waits for bytes that have not arrived.
	batch := make([]hub.Publication, 0, streamBatch)
	publishBatch := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := p.publish(r, batch, hub.PublishOptions{Wait: time.Duration(p.OverloadWait)})
		clear(batch) // the ring keeps the messages it retains; we need none
		batch = batch[:0]
		if err != nil {
			return hubError(err)
		}
		sum.add(out.Results)
		return nil
	}
	parser := &streamParser{
		topics:   topics,
		maxEvent: p.MaxEvent,
		emit: func(m *hub.Message) error {
			batch = append(batch, hub.Publication{Message: m, Topics: refs})
			if len(batch) >= streamBatch {
				return publishBatch()
			}
			return nil
		},
		flush: publishBatch,
	}
	body := idleReader{r: r.Body, rc: http.NewResponseController(w), idle: time.Duration(p.StreamIdleTimeout)}
	err := parser.readAll(body)
	_ = body.rc.SetReadDeadline(time.Time{})
	if err != nil {
		var pe *PublishError
		switch {
		case errors.As(err, &pe):
		case errors.Is(err, os.ErrDeadlineExceeded):
			pe = &PublishError{Status: http.StatusRequestTimeout,
				Msg: fmt.Sprintf("the stream was silent longer than stream_idle_timeout (%v)", body.idle)}
		default:
			pe = badRequest("", "reading body: %v", err)
		}
		p.hub.Counters().Reject(pe.Status)
		p.logRefusal(r, pe)
		return writeJSON(w, pe.Status, struct {
			Error   string `json:"error"`
			Field   string `json:"field,omitempty"`
			Outcome string `json:"outcome,omitempty"` // of the last batch, on a 504
			streamSummary
		}{fmt.Sprintf("%s (%d events were published before it)", pe.Msg, sum.Published), pe.Field, outcomeOf(pe), sum})
	}
	if c := p.logger.Check(zap.DebugLevel, "stream published"); c != nil {
		c.Write(zap.Strings("topics", topics), zap.Int64("events", sum.Published))
	}
	return writeJSON(w, http.StatusOK, sum)
}

// publish hands events to the engine, timing the call for the
// publish_duration_seconds histogram.
func (p *PublishHandler) publish(r *http.Request, pubs []hub.Publication, opts hub.PublishOptions) (hub.PublishOutcome, error) {
	start := time.Now()
	out, err := p.hub.Publish(r.Context(), pubs, opts)
	p.hub.Counters().ObservePublish(time.Since(start))
	return out, err
}

// refuse answers a refused publish, counting it by status and logging it
// (throttled).
func (p *PublishHandler) refuse(w http.ResponseWriter, r *http.Request, e *PublishError) error {
	p.hub.Counters().Reject(e.Status)
	p.logRefusal(r, e)
	return writePublishError(w, e)
}

// idleReader gives each read of a held stream a fresh deadline: a publisher
// may pause between events, but not go silent forever.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (ir idleReader) Read(b []byte) (int, error) {
	_ = ir.rc.SetReadDeadline(time.Now().Add(ir.idle))
	return ir.r.Read(b)
}

// resolve checks topic names against the hub's declarations and the
// route's max_topics_per_event.
func (p *PublishHandler) resolve(topics []string, prefix string) ([]hub.TopicRef, *PublishError) {
	if len(topics) == 0 {
		return nil, badRequest(prefix+"topic", "no topic given")
	}
	refs := make([]hub.TopicRef, 0, min(len(topics), p.MaxTopicsPerEvent))
	seen := make(map[string]bool, min(len(topics), p.MaxTopicsPerEvent))
	for _, t := range topics {
		if err := hub.ValidTopicName(t); err != nil {
			return nil, badRequest(prefix+"topic", "%s", err.Error())
		}
		if seen[t] {
			continue
		}
		if len(seen) == p.MaxTopicsPerEvent {
			return nil, &PublishError{Status: http.StatusTooManyRequests, Field: prefix + "topic",
				Msg: fmt.Sprintf("the event names more than %d topics, this route's max_topics_per_event", p.MaxTopicsPerEvent)}
		}
		seen[t] = true
		ref, ok := p.table.Lookup(t)
		// Internal topics take only what their own route publishes, with
		// the metadata its subscribers' filters need.
		if !ok || hub.InternalTopic(t) {
			return nil, &PublishError{Status: http.StatusNotFound, Field: prefix + "topic",
				Msg: fmt.Sprintf("topic %q is not declared by any sse handler of hub %q", t, p.Hub)}
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// hubError maps an engine's refusal to its answer (docs/publishing.md).
func hubError(err error) *PublishError {
	status, field := stream.EngineErrorStatus(err)
	return &PublishError{Status: status, Field: field, Msg: err.Error()}
}

// idempotencyKey reads the optional Idempotency-Key header: one, of 1-128
// printable ASCII bytes. A held stream takes none: it publishes as it goes,
// so there is no one result to answer again.
func idempotencyKey(r *http.Request, mediaType string) (string, *PublishError) {
	vals := r.Header.Values("Idempotency-Key")
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", badRequest("Idempotency-Key", "give one Idempotency-Key header, not %d", len(vals))
	case !hub.ValidIdempotencyKey(vals[0]):
		return "", badRequest("Idempotency-Key", "Idempotency-Key must be 1-%d printable ASCII characters", hub.MaxIdempotencyKeyLen)
	case mediaType == "text/event-stream":
		return "", badRequest("Idempotency-Key", "a text/event-stream publish takes no Idempotency-Key: its events are published as they arrive")
	}
	return vals[0], nil
}

func writePublishError(w http.ResponseWriter, e *PublishError) error {
	return writeJSON(w, e.Status, struct {
		Error   string `json:"error"`
		Field   string `json:"field,omitempty"`
		Outcome string `json:"outcome,omitempty"`
	}{e.Msg, e.Field, outcomeOf(e)})
}

// outcomeOf is "unknown" for a 504: the publish may or may not have
// happened (docs/publishing.md).
func outcomeOf(e *PublishError) string {
	if e.Status == http.StatusGatewayTimeout {
		return "unknown"
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	if status == http.StatusServiceUnavailable {
		// The engine is unreachable; nothing was published. Reconnection
		// is retried within about a second.
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*PublishHandler)(nil)
	_ caddy.Validator             = (*PublishHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*PublishHandler)(nil)
)
