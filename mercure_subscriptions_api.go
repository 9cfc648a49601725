package caddysse

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// The subscriptions web API (draft-08, "Subscription API"), GET or HEAD
// under /.well-known/mercure/subscriptions:
//
//	/.well-known/mercure/subscriptions                                   every active subscription
//	/.well-known/mercure/subscriptions/{matchType}/{match}               those of one matcher
//	/.well-known/mercure/subscriptions/{matchType}/{match}/{subscriber}  one (404 when not active)
//
// and the 0.x shapes, told apart by their first segment not being a
// matchType: /.well-known/mercure/subscriptions/{topic} (those of one
// selector) and /.well-known/mercure/subscriptions/{topic}/{subscriber}.
//
// The request's path, decoded segment by segment and expanded again
// (expandURIVar), is the topic the token's subscribe selectors must match,
// as they would the topic of the same subscriptions' events; a token is
// required (401), a token whose selectors do not match is a 403.

// subscriptionsQuery is what an API request asks for.
type subscriptionsQuery struct {
	path       string // canonical: the id of the answer and the topic to authorize
	matchType  string // "" for the 0.x shapes and the whole collection
	match      string
	subscriber string
	single     bool
}

var mercureMatchTypeNames = []string{"Exact", "URLPattern", mercureURITemplate}

// parseSubscriptionsPath reads an API path; ok is false for a path that
// names nothing (404).
func parseSubscriptionsPath(escaped string) (q subscriptionsQuery, ok bool) {
	rest, found := strings.CutPrefix(escaped, mercureSubscriptionsPath)
	if !found || rest != "" && rest[0] != '/' {
		return q, false
	}
	if rest == "" {
		return subscriptionsQuery{path: mercureSubscriptionsPath}, true
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
	switch {
	case len(segs) == 1: // 0.x: {topic}
		q.match = segs[0]
	case len(segs) == 2 && slices.Contains(mercureMatchTypeNames, segs[0]):
		q.matchType, q.match = segs[0], segs[1]
	case len(segs) == 2: // 0.x: {topic}/{subscriber}
		q.match, q.subscriber, q.single = segs[0], segs[1], true
	case len(segs) == 3 && slices.Contains(mercureMatchTypeNames, segs[0]):
		q.matchType, q.match, q.subscriber, q.single = segs[0], segs[1], segs[2], true
	default:
		return q, false
	}
	canon := make([]string, len(segs))
	for i, s := range segs {
		canon[i] = expandURIVar(s)
	}
	q.path = mercureSubscriptionsPath + "/" + strings.Join(canon, "/")
	return q, true
}

// selects reports whether the query's answer includes s.
func (q subscriptionsQuery) selects(s mercureSub) bool {
	return (q.matchType == "" || s.MatchType == q.matchType) &&
		(q.match == "" || s.Match == q.match) &&
		(q.subscriber == "" || s.Subscriber == q.subscriber)
}

// subscriptionsCollection is a collection answer.
type subscriptionsCollection struct {
	Context       string       `json:"@context"`
	ID            string       `json:"id"`
	Type          string       `json:"type"`
	LastEventID   string       `json:"lastEventID"`
	Subscriptions []mercureSub `json:"subscriptions"`
}

// serveSubscriptions answers an API request.
func (m *MercureHandler) serveSubscriptions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusMethodNotAllowed, Msg: "the subscriptions API answers GET"})
	}
	q, ok := parseSubscriptionsPath(r.URL.EscapedPath())
	grant, refusal := m.verify(r, m.auth.Subscriber, true)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	hubURL := mercureHubURL(r)
	hubURL.Path = "/.well-known/mercure"
	matchers, err := m.tokenSels.CompileAll(grantSelectors(grant.Subscribe), hubURL.String())
	if err != nil {
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusUnauthorized, Code: "invalid_token",
			Msg: "invalid token", Reason: err.Error()})
	}
	topic := q.path
	if !ok {
		topic = r.URL.EscapedPath() // a 404 only for those allowed to know
	}
	if !slices.ContainsFunc(matchers, func(mm *MercureMatcher) bool { return mm.Match(topic) }) {
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusForbidden, Code: "insufficient_scope",
			Msg: "the token does not allow subscribing to " + truncate(topic, 128)})
	}
	if !ok {
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusNotFound, Msg: "no such subscriptions resource"})
	}
	// The last id first, then the registry: a change the list misses is
	// published after that id (the registry changes before its event).
	last := mercureLastEventID(m.hub)
	all, err := m.subs.list(r.Context())
	if err != nil {
		m.logger.Warn("subscriptions registry unreadable", zap.Error(err))
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusServiceUnavailable, Msg: "subscriptions registry unavailable"})
	}
	subs := make([]mercureSub, 0, len(all))
	for _, s := range all {
		if q.selects(s) {
			subs = append(subs, s)
		}
	}
	slices.SortFunc(subs, func(a, b mercureSub) int { return strings.Compare(a.ID, b.ID) })
	var doc any
	if q.single {
		if len(subs) == 0 {
			return m.refuse(w, r, &mercureRefusal{Status: http.StatusNotFound, Msg: "no such active subscription"})
		}
		s := subs[0]
		s.Context, s.LastEventID = mercureContext, last
		doc = s
	} else {
		doc = subscriptionsCollection{Context: mercureContext, ID: q.path, Type: "Subscriptions",
			LastEventID: last, Subscriptions: subs}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/ld+json")
	h.Set("Cache-Control", "private, must-revalidate")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = w.Write(body)
	return err
}
