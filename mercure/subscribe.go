package mercure

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"go.uber.org/zap"
)

// mercureSubscribeRequest is what a subscribe request asks for.
type mercureSubscribeRequest struct {
	Selectors []MercureSelector
	// Resume is the resume point: the Last-Event-ID header, else the
	// last_event_id parameter, else (compatibility mode) lastEventID. ""
	// when none was given.
	Resume string
	// Earliest: the resume point is the reserved value "earliest".
	Earliest bool
}

// patternLimits adds the cost and cache limits every selector list of
// this handler shares to cfg, and the logger. A token's list (signed by a
// trusted issuer, and allowed more entries than a request) gets the
// pattern budget once per 100 selectors it may hold, so that a token as
// large as its limits allow is never refused for its size alone.
func (m *Handler) patternLimits(cfg MercureSelectorConfig, token bool) MercureSelectorConfig {
	cfg.MaxPatternCost = m.MaxPatternCost
	cfg.PatternBudget = m.PatternBudget
	if token && cfg.MaxSelectors > DefaultMercureMaxSelectors {
		per100 := (cfg.MaxSelectors + DefaultMercureMaxSelectors - 1) / DefaultMercureMaxSelectors
		cfg.PatternBudget = satMul(orDefault(m.PatternBudget, DefaultMercurePatternBudget), per100)
	}
	cfg.CacheBytes = m.PatternCacheSize
	cfg.Logger = m.logger
	return cfg
}

// validateMatcherLimits refuses negative limits (the resource identifier
// is checked with the token settings, jwt.go).
func (m *Handler) validateMatcherLimits() error {
	for _, l := range []struct {
		name string
		v    int64
	}{{"max_matchers", int64(m.MaxMatchers)}, {"max_matcher_length", int64(m.MaxMatcherLength)},
		{"max_pattern_cost", int64(m.MaxPatternCost)}, {"pattern_budget", int64(m.PatternBudget)},
		{"pattern_cache_size", m.PatternCacheSize}} {
		if l.v < 0 {
			return fmt.Errorf("sse_mercure: %s must not be negative", l.name)
		}
	}
	if m.MaxMatcherLength > 1<<20 {
		return errors.New("sse_mercure: max_matcher_length: at most 1MiB")
	}
	return nil
}

// mercureMethodQuery is the QUERY method (RFC 10008): a safe method whose
// form body carries the matchers when they do not fit in a URL.
const mercureMethodQuery = "QUERY"

// parseMercureSubscribe reads the matchers and the resume point of a
// subscribe request from its query and, for QUERY, its form body (nil
// otherwise): their union, as the spec's Subscription section says. Every
// matcher parameter counts (MercureSubscribeParam); a parameter in the
// reserved match namespace that is no matcher type is a 400, as is a
// request without any matcher. last_event_id is single-valued: the query's
// wins over the body's, and the Last-Event-ID header over both.
func parseMercureSubscribe(query, body url.Values, header http.Header, compat bool) (*mercureSubscribeRequest, *mercureRefusal) {
	req := &mercureSubscribeRequest{}
	for _, vals := range []url.Values{query, body} {
		// Sorted: the order of a map's keys is random, and an error must
		// name the same parameter every time.
		for _, name := range slices.Sorted(maps.Keys(vals)) {
			t, ok, err := MercureSubscribeParam(name, compat)
			if err != nil {
				return nil, badMercureRequest("%v", err)
			}
			if !ok {
				continue
			}
			for _, v := range vals[name] {
				req.Selectors = append(req.Selectors, MercureSelector{Type: t, Value: v})
			}
		}
	}
	if len(req.Selectors) == 0 {
		if compat {
			return nil, badMercureRequest("name the topics to receive with match=, match_urlpattern= or (Mercure 0.x) topic=")
		}
		return nil, badMercureRequest("name the topics to receive with match= (exact) or match_urlpattern= (URL pattern)")
	}
	names := []string{"last_event_id"}
	if compat {
		names = append(names, "lastEventID") // 0.x
	}
	req.Resume = header.Get("Last-Event-ID")
	for _, name := range names {
		for _, vals := range []url.Values{query, body} {
			if req.Resume != "" {
				break
			}
			switch vs := vals[name]; len(vs) {
			case 0:
			case 1:
				req.Resume = vs[0]
			default:
				return nil, badMercureRequest("give one %s, not %d", name, len(vs))
			}
		}
	}
	if req.Resume == "earliest" {
		req.Resume, req.Earliest = "", true
	}
	return req, nil
}

// subscribeBody reads the form body of a QUERY request; nil for GET and
// HEAD. The body is bounded (by what the matcher limits can need, and
// never over max_body) and must arrive in time.
func (m *Handler) subscribeBody(w http.ResponseWriter, r *http.Request) (url.Values, *mercureRefusal) {
	if r.Method != mercureMethodQuery {
		return nil, nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &mercureRefusal{Status: http.StatusUnsupportedMediaType,
			Msg: "send a QUERY's matchers with Content-Type: application/x-www-form-urlencoded"}
	}
	cfg := m.querySels.Config()
	// Each matcher percent-encoded (3 bytes a byte at most), its name and
	// separators, and room for the other parameters.
	limit := min(m.MaxBody, int64(cfg.MaxSelectors)*int64(3*cfg.MaxLength+32)+8<<10)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(stream.DefaultBodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, &mercureRefusal{Status: http.StatusRequestEntityTooLarge,
				Msg: fmt.Sprintf("QUERY body is larger than %d bytes (max_matchers of max_matcher_length, at most max_body)", limit)}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, &mercureRefusal{Status: http.StatusRequestTimeout,
				Msg: fmt.Sprintf("body not received within %v", stream.DefaultBodyTimeout)}
		}
		return nil, badMercureRequest("reading body: %v", err)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badMercureRequest("malformed form body: %v", err)
	}
	return vals, nil
}

// patternBaseURL is the base URL that relative URL patterns, and the
// relative topics they are matched against, resolve against (the spec:
// "the hub's URL"). A configured resource identifier is that URL: the
// client's Host header must not change what a token's relative pattern
// grants (hole 7).
func (m *Handler) patternBaseURL(r *http.Request) string {
	return m.hubBaseURL(r).String()
}

// subscribe serves a GET, HEAD or QUERY. The order keeps an anonymous
// client from making the hub compile anything: the parameters and their
// cheap checks (text, count, estimated cost: 400), then the token (401,
// 403), then compiling the patterns (400 for a malformed one) into a
// decider that the hub's filter asks for every update.
func (m *Handler) subscribe(w http.ResponseWriter, r *http.Request) error {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return m.refuse(w, r, badMercureRequest("malformed query: %v", err))
	}
	body, refusal := m.subscribeBody(w, r)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	req, refusal := parseMercureSubscribe(query, body, r.Header, m.compat())
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	if err := m.querySels.CheckAll(req.Selectors); err != nil {
		return m.refuse(w, r, badMercureRequest("%v", err))
	}
	grant, refusal := m.verify(r, m.auth.Subscriber, !m.Anonymous)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	hubURL := m.patternBaseURL(r)
	subscribed, err := m.querySels.CompileAll(req.Selectors, hubURL)
	if err != nil {
		return m.refuse(w, r, badMercureRequest("%v", err))
	}
	var private []*MercureMatcher
	var expires time.Time
	if grant != nil {
		if private, err = m.tokenSels.CompileAll(grantSelectors(grant.Subscribe), hubURL); err != nil {
			return m.refuse(w, r, &mercureRefusal{Status: http.StatusUnauthorized, Code: "invalid_token",
				Msg: "invalid token", Reason: err.Error()})
		}
		expires = grant.Expires
	}
	decider := m.querySels.Decider(subscribed, private)

	// private: a stream authorized by a token must not be cached for others.
	if stream.Headers(w, r, "private, no-cache, no-transform") {
		return nil
	}
	hdr := w.Header()
	resuming := req.Resume != "" || req.Earliest
	opts := hub.SubscribeOptions{
		Resume:   req.Resume,
		Earliest: req.Earliest,
		QueueLen: m.Queue,
		Filter: func(ev *hub.Event) bool {
			meta, _ := ev.Decoded(decodeMercureMeta).(*mercureMeta)
			return meta != nil && meta.allows(decider)
		},
	}
	if resuming && !req.Earliest {
		opts.Predecessor = DefaultMercurePredecessorScan
	}
	refs := []hub.TopicRef{m.ref}
	if m.subs != nil && len(private) > 0 {
		// Subscription events are private: only a subscriber whose token
		// has subscribe selectors can be allowed one, so only those read
		// their topic (each event costs a filter call per reader).
		refs = append(refs, m.subsRef)
	}
	if !m.streamer.Enter() {
		return m.streamer.ComeBackLater(w, "too many subscribers on this route")
	}
	sub, replay, err := m.hub.SubscribeWith(refs, opts)
	if err != nil {
		m.streamer.Leave()
		if errors.Is(err, hub.ErrTooManyTopics) {
			return m.streamer.ComeBackLater(w, "too many topics in this hub")
		}
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusServiceUnavailable, Msg: "event hub unavailable: " + err.Error()})
	}
	if resuming {
		// Where the stream starts (spec "Reconnection"), as the id of the newest
		// update before it that this subscriber may see, else "earliest"
		// (an unknown resume point, or nothing visible before it).
		lei := replay.Predecessor
		if lei == "" {
			lei = "earliest"
		}
		// The spec's response field; Last-Event-ID is registered for
		// requests only, so modern mode does not send it. 0.x hubs did
		// (the spec's appendix on pre-standardization deployments), and
		// 0.x clients read it.
		hdr.Set("Mercure-Last-Event-ID", lei)
		if m.compat() {
			hdr.Set("Last-Event-ID", lei)
		}
	}
	if c := m.logger.Check(zap.DebugLevel, "mercure subscriber"); c != nil {
		c.Write(zap.Int("selectors", len(subscribed)), zap.Bool("token", grant != nil),
			zap.String("resume", req.Resume), zap.Bool("earliest", req.Earliest),
			zap.Int("replayed", len(replay.Events)), zap.String("client", stream.ClientForLog(r)))
	}
	// The stream ends by the token's exp (draft-08): the client reconnects
	// with a fresh token, or is refused.
	// The subscriptions end when the stream does: release runs then,
	// also for an HTTP/1.1 stream served on after this returns.
	leave := m.subscriptionsJoin(r, subscribed, private, grant)
	release := func() { leave(); m.streamer.Leave() }
	return m.streamer.Stream(w, r, sub, replay, refs, expires, release)
}
