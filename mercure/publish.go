package mercure

import (
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// ServeHTTP serves the Mercure protocol: POST publishes, GET and HEAD
// subscribe.
func (m *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if m.cors != nil {
		if answered, err := m.cors.Handle(w, r); answered {
			return err
		}
	}
	if served, err := m.serveMetadata(w, r); served { // metadata.go
		return err
	}
	if m.subs != nil && isSubscriptionsRequest(r) {
		return m.serveSubscriptions(w, r)
	}
	switch r.Method {
	case http.MethodPost:
		return m.publish(w, r)
	case http.MethodGet, http.MethodHead, mercureMethodQuery:
		return m.subscribe(w, r)
	}
	w.Header().Set("Allow", "GET, HEAD, POST, QUERY")
	return m.refuse(w, r, &mercureRefusal{Status: http.StatusMethodNotAllowed, Msg: "subscribe with GET, publish with POST"})
}

// mercureRefusal is a refused Mercure request. Code is the RFC 6750 error
// of the WWW-Authenticate challenge; the challenge is sent with every 401
// (a bare "Bearer" when no token was presented), and with 400 and 403
// answers that have a code.
type mercureRefusal struct {
	Status int
	Code   string // invalid_request, invalid_token, insufficient_scope, or ""
	Msg    string
	Reason string // logged, never sent (why a token is invalid)
}

// badMercureRequest is a 400 for a request malformed independently of its
// token (a missing topic, an unknown matcher parameter): no Bearer
// challenge, as the spec's Error Responses allow and Mercure's hub answers;
// invalid_request is kept for a malformed token or presentation (verify).
func badMercureRequest(format string, args ...any) *mercureRefusal {
	return &mercureRefusal{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// refuse answers a refusal in plain text (an EventSource stops on a
// non-stream answer instead of retrying) and logs why, throttled per
// status and error code (logs.go): authorization refusals at warn with
// their reason (never the token), so that a newcomer whose token is
// refused learns why from Caddy's log; a bare 401 (no token: a client's
// first try) at info. Every Bearer challenge carries resource_metadata.
func (m *Handler) refuse(w http.ResponseWriter, r *http.Request, e *mercureRefusal) error {
	if r.Method == http.MethodPost {
		m.hub.Counters().Reject(e.Status)
	}
	m.logRefusal(r, e)
	if e.Status == http.StatusUnauthorized || e.Code != "" {
		w.Header().Set("WWW-Authenticate", m.bearerChallenge(r, e.Code))
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Cache-Control", "no-store")
	return stream.PlainError(w, e.Status, e.Msg)
}

// mercureUpdate is a publish request's form, checked.
type mercureUpdate struct {
	Topics  []string // distinct, canonical first
	Data    string
	Private bool
	ID      string // publisher-chosen; "" lets the hub choose
	Type    string
	Retry   time.Duration
}

// parseMercureUpdate reads an application/x-www-form-urlencoded publish
// body: topic (repeatable, the first canonical), data, private (its
// presence alone), id, type, retry. Unknown fields are ignored, as the
// spec requires; a field given twice that takes one value is a 400.
//
// What the spec forbids is a 400 (invalid_request): no topic, a topic that
// is exactly "*" (the wildcard matcher's), control (C0, DEL, C1) or format
// (Unicode Cf) characters in a topic, the id or the type (they would
// inject SSE fields, or spoof identifiers invisibly), an id starting with
// "#" (hub ids) or equal to "earliest", the type "mercure" (hub events),
// a retry that is not all ASCII digits. What exceeds a limit is a 413 (the
// spec's "Content Too Large"): more than maxTopics topic fields, a topic
// longer than maxTopicLen bytes (0: no cap but the body's), a retry beyond
// 2^32-1 ms. The id and the type have no cap of their own: the body's
// bounds them, as in Mercure. The reserved namespace is checked by the
// caller, which knows the hub's URL.
// readBody reads a whole publish body. A declared Content-Length sizes the
// buffer up to 64KiB, so the usual update is read into one allocation
// rather than io.ReadAll's doubling from 512 bytes; a larger or lying
// length costs no more than that before bytes arrive.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	size := 512
	if contentLength > 0 {
		size = int(min(contentLength, 64<<10)) + 1 // +1: EOF without a grow
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func parseMercureUpdate(body []byte, maxTopics, maxTopicLen int) (*mercureUpdate, *mercureRefusal) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badMercureRequest("malformed form body: %v", err)
	}
	one := func(name string) (string, *mercureRefusal) {
		switch vs := form[name]; len(vs) {
		case 0:
			return "", nil
		case 1:
			return vs[0], nil
		default:
			return "", badMercureRequest("give one %s field, not %d", name, len(vs))
		}
	}
	topics := form["topic"]
	if len(topics) == 0 {
		return nil, badMercureRequest("no topic given")
	}
	if maxTopics > 0 && len(topics) > maxTopics {
		return nil, &mercureRefusal{Status: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("the update has %d topic fields; at most %d are allowed (max_topics)", len(topics), maxTopics)}
	}
	up := &mercureUpdate{Topics: make([]string, 0, len(topics))}
	seen := make(map[string]struct{}, len(topics))
	for _, t := range topics {
		if maxTopicLen > 0 && len(t) > maxTopicLen {
			return nil, &mercureRefusal{Status: http.StatusRequestEntityTooLarge,
				Msg: fmt.Sprintf("a topic is %d bytes; at most %d are allowed (max_topic_length)", len(t), maxTopicLen)}
		}
		if why := mercureTextProblem(t); why != "" {
			return nil, badMercureRequest("topic %q %s", hub.Truncate(t, 64), why)
		}
		if t == "*" {
			return nil, badMercureRequest(`topic "*" is reserved for the wildcard matcher`)
		}
		if _, dup := seen[t]; dup {
			continue
		}
		seen[t] = struct{}{}
		up.Topics = append(up.Topics, t)
	}
	var r *mercureRefusal
	if up.Data, r = one("data"); r != nil {
		return nil, r
	}
	if !utf8.ValidString(up.Data) {
		return nil, badMercureRequest("data is not valid UTF-8")
	}
	_, up.Private = form["private"]
	if up.ID, r = one("id"); r != nil {
		return nil, r
	}
	if up.ID != "" {
		switch why := mercureTextProblem(up.ID); {
		case why != "":
			return nil, badMercureRequest("id %q %s", hub.Truncate(up.ID, 64), why)
		case up.ID[0] == '#':
			return nil, badMercureRequest("id must not start with '#': it is reserved for ids the hub generates")
		case up.ID == "earliest":
			return nil, badMercureRequest(`id must not be "earliest": it is the reserved resume value`)
		}
	}
	if up.Type, r = one("type"); r != nil {
		return nil, r
	}
	if up.Type != "" {
		switch why := mercureTextProblem(up.Type); {
		case why != "":
			return nil, badMercureRequest("type %q %s", hub.Truncate(up.Type, 64), why)
		case up.Type == "mercure":
			return nil, badMercureRequest(`type "mercure" is reserved for the events the hub generates`)
		}
	}
	retry, r := one("retry")
	if r != nil {
		return nil, r
	}
	if _, given := form["retry"]; given {
		if retry == "" || strings.TrimLeft(retry, "0123456789") != "" { // digits only: no sign, no space
			return nil, badMercureRequest("retry must be a number of milliseconds (ASCII digits only), not %q", hub.Truncate(retry, 32))
		}
		ms, err := strconv.ParseUint(retry, 10, 32)
		if err != nil {
			return nil, &mercureRefusal{Status: http.StatusRequestEntityTooLarge,
				Msg: fmt.Sprintf("retry is at most %d milliseconds", uint32(math.MaxUint32))}
		}
		up.Retry = time.Duration(ms) * time.Millisecond
	}
	return up, nil
}

// mercureTextProblem says what makes a topic, an id or a type unusable:
// empty, not UTF-8, or holding a C0, DEL or C1 control character or a
// Unicode format character (Cf: bidirectional and zero-width controls,
// invisible, so they spoof identifiers) (spec, Terminology and
// Publication).
func mercureTextProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, c := range s {
		switch {
		case c < 0x20 || c == 0x7f || c >= 0x80 && c <= 0x9f:
			return "contains a control character"
		case c > 0x9f && unicode.Is(unicode.Cf, c):
			return fmt.Sprintf("contains the format character U+%04X", c)
		}
	}
	return ""
}

// publish serves a POST: token first (an anonymous client cannot make the
// hub read a body), then the form, then the rights on every topic.
func (m *Handler) publish(w http.ResponseWriter, r *http.Request) error {
	grant, refusal := m.verify(r, m.auth.Publisher, true)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusUnsupportedMediaType,
			Msg: "publish with Content-Type: application/x-www-form-urlencoded"})
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(stream.DefaultBodyTimeout))
	body, err := readBody(http.MaxBytesReader(w, r.Body, m.MaxBody), r.ContentLength)
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return m.refuse(w, r, &mercureRefusal{Status: http.StatusRequestEntityTooLarge,
				Msg: fmt.Sprintf("body is larger than max_body (%d bytes)", m.MaxBody)})
		case errors.Is(err, os.ErrDeadlineExceeded):
			return m.refuse(w, r, &mercureRefusal{Status: http.StatusRequestTimeout,
				Msg: fmt.Sprintf("body not received within %v", stream.DefaultBodyTimeout)})
		}
		return m.refuse(w, r, badMercureRequest("reading body: %v", err))
	}
	up, refusal := parseMercureUpdate(body, m.MaxTopics, m.MaxTopicLength)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	hubURL := m.hubBaseURL(r)
	reserved := m.reservedFor(hubURL)
	for _, t := range up.Topics {
		switch in, err := reserved.check(t); {
		case err != nil:
			return m.refuse(w, r, &mercureRefusal{Status: http.StatusRequestEntityTooLarge, Msg: err.Error()})
		case in:
			return m.refuse(w, r, badMercureRequest("topic %q is in the hub's reserved namespace %s", hub.Truncate(t, 64), reserved.path))
		}
	}
	if refusal := m.mayPublish(grant, up.Topics, hubURL.String()); refusal != nil {
		return m.refuse(w, r, refusal)
	}
	meta := encodeMercureMeta(mercureMeta{Topics: up.Topics, Private: up.Private})
	msg := &hub.Message{
		Topics:   []string{MercureTopic},
		Name:     up.Type,
		Data:     up.Data,
		Retry:    up.Retry,
		Meta:     meta,
		PublicID: up.ID,
		HashID:   up.ID == "",
	}
	start := time.Now()
	out, err := m.hub.Publish(r.Context(), []hub.Publication{{Message: msg, Topics: []hub.TopicRef{m.ref}}},
		hub.PublishOptions{Wait: stream.DefaultOverloadWait})
	m.hub.Counters().ObservePublish(time.Since(start))
	if err != nil {
		var fe *hub.FieldError
		switch {
		case errors.Is(err, hub.ErrReservedID):
			// "<epoch>-<seq>": the form of this hub's own ids, which a
			// resume point must tell apart from publishers' (a reused id
			// is no error: it resumes after its earliest bearer). Every
			// subscriber sees the epoch; nothing private is told here.
			return m.refuse(w, r, badMercureRequest("id %q has the form of the ids this hub generates; choose another", hub.Truncate(up.ID, 64)))
		case errors.As(err, &fe):
			return m.refuse(w, r, badMercureRequest("%s: %s", fe.Field, fe.Msg))
		}
		status, _ := stream.EngineErrorStatus(err) // 503 (engine unavailable, overloaded), 504 (outcome unknown)
		return m.refuse(w, r, &mercureRefusal{Status: status, Msg: err.Error()})
	}
	id := up.ID
	if id == "" {
		id = "#" + out.Results[0].ID
	}
	if c := m.logger.Check(zap.DebugLevel, "mercure update published"); c != nil {
		c.Write(zap.Strings("topics", up.Topics), zap.Bool("private", up.Private), zap.String("id", id),
			zap.Int("delivered", out.Results[0].Delivered))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err = io.WriteString(w, id)
	return err
}

// mayPublish checks that the publisher's token allows every topic of the
// update, canonical and alternate alike: each must match one of its
// publish matchers (the spec's "Publishers"). base resolves relative
// matchers: m.hubBaseURL(r).String().
func (m *Handler) mayPublish(grant *MercureGrant, topics []string, base string) *mercureRefusal {
	matchers, err := m.tokenSels.CompileAll(grantSelectors(grant.Publish), base)
	if err != nil {
		return &mercureRefusal{Status: http.StatusUnauthorized, Code: "invalid_token", Msg: "invalid token", Reason: err.Error()}
	}
	for _, t := range topics {
		allowed := false
		for _, mm := range matchers {
			if mm.Match(t) {
				allowed = true
				break
			}
		}
		if !allowed {
			reason := grant.Shape
			if reason == "" {
				reason = fmt.Sprintf("no publish matcher of the token (%d) matches topic %q", len(matchers), hub.Truncate(t, 128))
			}
			return &mercureRefusal{Status: http.StatusForbidden, Code: "insufficient_scope",
				Msg: fmt.Sprintf("the token does not allow publishing to topic %q", hub.Truncate(t, 64)), Reason: reason}
		}
	}
	return nil
}

func grantSelectors(ts []MercureGrantTopic) []MercureSelector {
	out := make([]MercureSelector, len(ts))
	for i, t := range ts {
		out[i] = t.MercureSelector
	}
	return out
}

// verify finds and verifies the request's token for a role. required: no
// token is a 401 (a bare challenge); otherwise (an anonymous subscriber)
// it returns a nil grant. A malformed presentation, and a cookie token on
// a publish from an origin not allowed (CSRF), are 400 invalid_request.
// The token's aud must contain the resource identifier of this request
// (m.resourceIdentifier).
func (m *Handler) verify(r *http.Request, v *MercureVerifier, required bool) (*MercureGrant, *mercureRefusal) {
	tok, err := m.auth.RequestToken(r)
	if err != nil {
		return nil, &mercureRefusal{Status: http.StatusBadRequest, Code: "invalid_request", Msg: err.Error(), Reason: err.Error()}
	}
	if tok.Source == MercureTokenNone {
		if required {
			return nil, &mercureRefusal{Status: http.StatusUnauthorized, Msg: "a token is required", Reason: m.noTokenReason(r)}
		}
		return nil, nil
	}
	if r.Method == http.MethodPost {
		if err := m.auth.CheckCookieOrigin(r, tok.Source); err != nil {
			return nil, &mercureRefusal{Status: http.StatusBadRequest, Code: "invalid_request", Msg: err.Error(), Reason: err.Error()}
		}
	}
	if v == nil {
		return nil, &mercureRefusal{Status: http.StatusUnauthorized, Code: "invalid_token", Msg: "invalid token",
			Reason: "no issuer has a key for this role's tokens"}
	}
	grant, err := v.Verify(tok.Token, m.resourceIdentifier(r))
	if err != nil {
		reason := err.Error()
		var te *MercureTokenError
		if errors.As(err, &te) {
			reason = te.Reason + " (token from the " + string(tok.Source) + ")"
		}
		return nil, &mercureRefusal{Status: http.StatusUnauthorized, Code: "invalid_token", Msg: "invalid token", Reason: reason}
	}
	return grant, nil
}
