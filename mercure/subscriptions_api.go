package mercure

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ssehub/caddy-sse/internal/hub"

	"go.uber.org/zap"
)

// The subscriptions web API (spec "Subscription API"), GET or HEAD under
// <hub path>/subscriptions:
//
//	/subscriptions                                   every active subscription
//	/subscriptions/{match_type}/{match}              those of one matcher
//	/subscriptions/{match_type}/{match}/{subscriber} one (404 when not active)
//
// with match_type exact or urlpattern, in the 1.0 shape. In compatibility
// mode the 0.x shapes answer too, as Mercure 0.24.2 does: /subscriptions
// itself, /subscriptions/{topic} (those of one selector) and
// /subscriptions/{topic}/{subscriber}, told apart from the 1.0 ones by
// their first segment not being a matcher type.
//
// Authorization is twofold. The requested path (the request URL's
// absolute path, as sent, without its query) is the topic the token's
// subscribe matchers must match (spec); then every subscription served
// must itself be a topic they match, its document's id, which is the
// topic of its events. So the API never serves what the token could not
// read as a subscription event: a token allowed a collection's path but
// only its owner's subscriptions gets its owner's only, not the other
// subscribers' with their payloads.

// subscriptionsQuery is what an API request asks for.
type subscriptionsQuery struct {
	shape      subsShape
	path       string // canonical (each segment expanded once): the answer's id
	matchType  string // "" for the 0.x shapes and the whole collection
	match      string
	subscriber string
	single     bool
}

// subsPathMatchType reports a 1.0 matcher type in an API path.
func subsPathMatchType(s string, compat bool) bool {
	return s == subsMatchExact || s == subsMatchURLPattern || compat && s == subsMatchURITemplate
}

// parseSubscriptionsPath reads an API path; ok is false for a path that
// names nothing (404). compat admits the 0.x shapes.
func parseSubscriptionsPath(escaped string, compat bool) (q subscriptionsQuery, ok bool) {
	hubName, rest, found := splitSubscriptionsPath(escaped)
	if !found {
		return q, false
	}
	base := hubName + "/subscriptions"
	if rest == "" {
		q.path = base
		if compat {
			q.shape = subsLegacy
		}
		return q, true
	}
	raw := strings.Split(rest[1:], "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil || v == "" {
			return q, false
		}
		segs[i] = v
	}
	typed := subsPathMatchType(segs[0], compat)
	switch {
	case len(segs) == 2 && typed:
		q.matchType, q.match = segs[0], segs[1]
	case len(segs) == 3 && typed:
		q.matchType, q.match, q.subscriber, q.single = segs[0], segs[1], segs[2], true
	case compat && len(segs) == 1: // 0.x: {topic}
		q.shape, q.match = subsLegacy, segs[0]
	case compat && len(segs) == 2: // 0.x: {topic}/{subscriber}
		q.shape, q.match, q.subscriber, q.single = subsLegacy, segs[0], segs[1], true
	default:
		return q, false
	}
	canon := make([]string, len(segs))
	for i, s := range segs {
		canon[i] = expandURIVar(s)
	}
	q.path = base + "/" + strings.Join(canon, "/")
	return q, true
}

// selects reports whether the query's answer includes s.
func (q subscriptionsQuery) selects(s mercureSub) bool {
	return (q.matchType == "" || s.MatchType == q.matchType) &&
		(q.match == "" || s.Match == q.match) &&
		(q.subscriber == "" || s.Subscriber == q.subscriber)
}

// serveSubscriptions answers an API request.
func (m *Handler) serveSubscriptions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusMethodNotAllowed, Msg: "the subscriptions API answers GET"})
	}
	requested := r.URL.EscapedPath()
	hubPath, _, _ := splitSubscriptionsPath(requested)
	grant, refusal := m.verify(r, m.auth.Subscriber, true)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	// The hub's URL: the base of relative URL patterns and the Link
	// target (the pinned identifier, or the hub path this request
	// reached).
	hubURL := m.hubBaseURL(r)
	if hubURL.Path == r.URL.Path {
		hubURL.Path, hubURL.RawPath = "", ""
		if p, err := url.PathUnescape(hubPath); err == nil {
			hubURL.Path = p
			if p != hubPath {
				hubURL.RawPath = hubPath
			}
		}
	}
	hubURL.RawQuery, hubURL.Fragment = "", ""
	matchers, err := m.tokenSels.CompileAll(grantSelectors(grant.Subscribe), hubURL.String())
	if err != nil {
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusUnauthorized, Code: "invalid_token",
			Msg: "invalid token", Reason: err.Error()})
	}
	readable := func(topic string) bool {
		return slices.ContainsFunc(matchers, func(mm *MercureMatcher) bool { return mm.Match(topic) })
	}
	// The path as requested is the topic to authorize (spec): a 404 only
	// for those allowed to know.
	if !readable(requested) {
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusForbidden, Code: "insufficient_scope",
			Msg: "the token does not allow subscribing to " + hub.Truncate(requested, 128)})
	}
	q, ok := parseSubscriptionsPath(requested, m.compat())
	if !ok {
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusNotFound, Msg: "no such subscriptions resource"})
	}
	// The cursor first, then the registry: a change the list misses is
	// published after that id (the registry changes before its event).
	last := mercureLastEventID(m.hub)
	all, err := m.subs.list(r.Context())
	if err != nil {
		m.logger.Warn("subscriptions registry unreadable", zap.Error(err))
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusServiceUnavailable, Msg: "subscriptions registry unavailable"})
	}
	subs := make([]mercureSub, 0, len(all))
	for _, s := range all {
		// Each subscription served is authorized by its own topic.
		if q.selects(s) && readable(q.shape.topic(s)) {
			subs = append(subs, s)
		}
	}
	slices.SortFunc(subs, func(a, b mercureSub) int { return strings.Compare(q.shape.topic(a), q.shape.topic(b)) })
	var doc any
	if q.single {
		if len(subs) == 0 {
			if q.shape.cursorInLink() {
				// "Every endpoint" carries the cursor (spec, Subscription
				// API), a 404 too: a client learns from where to watch
				// for the subscription to appear.
				w.Header().Set("Link", "<"+hubURL.EscapedPath()+`>; rel="mercure"; last-event-id="`+last+`"; type="mercure"; content-type="application/json"`)
			}
			return m.refuse(w, r, &mercureRefusal{Status: http.StatusNotFound, Msg: "no such active subscription"})
		}
		legacyLast := ""
		if !q.shape.cursorInLink() {
			legacyLast = last
		}
		doc = q.shape.doc(subs[0], true, true, legacyLast)
	} else {
		doc = q.shape.collection(q.path, subs, last)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	h := w.Header()
	// private: the answer depends on the token; a shared cache must not
	// keep it (must-revalidate alone would let one store it, RFC 9111
	// 3.5).
	h.Set("Cache-Control", "private, must-revalidate")
	if q.shape.cursorInLink() {
		// A relative reference, as Mercure's hub sends it: it resolves
		// against the URL the client used, so a proxy that terminates TLS
		// or rewrites the host cannot make it point elsewhere.
		h.Set("Link", "<"+hubURL.EscapedPath()+`>; rel="mercure"; last-event-id="`+last+`"; type="mercure"; content-type="application/json"`)
	}
	// The validator covers the cursor and the body: a token that reads
	// less, or a change whose event was dropped, is another answer. Both
	// shapes carry one (Mercure 0.24.2's answers have an ETag too).
	sum := sha256.Sum256([]byte(last + "\n" + string(body)))
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	h.Set("ETag", etag)
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", q.shape.contentType())
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = w.Write(body)
	return err
}

// etagMatches is If-None-Match's weak comparison (RFC 9110 13.1.2) of a
// strong etag against the header's lists.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}
