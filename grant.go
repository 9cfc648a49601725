package caddysse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// The grant: the app decides, per subscriber request, which topics it may
// have. The sse route names a placeholder (`grant {rp.header.X-Sse-Topics}`)
// that the app fills, usually as the answer of reverse_proxy with
// handle_response or of forward_auth. It resolves to a list of concrete
// topic names; each must be one the route declares (a literal or a `*`
// match), and the subscriber gets the granted topics and nothing else.
//
// A grant the route cannot honour in full (an undeclared name, too many
// names, an invalid one) refuses the request rather than serving the rest:
// it is the app's bug, and serving part of it would hide it.

// grantSeparator splits a grant into names: commas (Caddy joins a header
// sent several times with ",") and white space. Neither is allowed in a
// topic name, so the split is unambiguous.
func grantSeparator(r rune) bool {
	return r == ',' || r == ' ' || r == '\t'
}

// splitGrant returns the distinct names of a resolved grant, in order.
func splitGrant(v string) []string {
	var out []string
	for _, n := range strings.FieldsFunc(v, grantSeparator) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// validateGrant checks a route's grant against its declarations at load.
func validateGrant(grant string, decls []hub.TopicDecl) error {
	if grant == "" {
		return nil
	}
	if !strings.Contains(grant, "{") {
		return fmt.Errorf("grant %q has no placeholder: it names the topics the app grants per request, such as {rp.header.X-Sse-Topics}", grant)
	}
	for _, d := range decls {
		if d.HasPlaceholder() {
			return fmt.Errorf("grant: topic %q has a placeholder; on a route with grant the grant names the subscriber's topics, and the declarations only say which may be granted (use topic %s)",
				d.Name, strings.Join(hub.PatternSegments(d.Name), "/"))
		}
	}
	return nil
}

// errGrantRefused is the answer to a subscriber whose grant is missing or
// cannot be honoured; the detail goes to the log, for the operator.
const errGrantRefused = "this request may not subscribe here"

// grantedTopics resolves the route's grant for this request. A refusal
// comes with its kind (a closed set: "missing", "too_many", "invalid",
// "undeclared"), which keys the log throttle, so that one kind of refusal
// flooding the log does not hide another.
func (h *SSEHandler) grantedTopics(r *http.Request) ([]string, string, error) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return nil, "missing", errors.New("no placeholders in this request")
	}
	// Unknown (the app did not answer the header) and empty both refuse.
	v, err := repl.ReplaceOrErr(h.Grant, true, true)
	if err != nil {
		return nil, "missing", fmt.Errorf("nothing granted: %v", err)
	}
	names := splitGrant(v)
	if len(names) == 0 {
		return nil, "missing", errors.New("nothing granted: the grant is empty")
	}
	if len(names) > h.MaxTopicsPerSubscriber {
		return nil, "too_many", fmt.Errorf("the grant names %d topics; this route allows %d per connection (max_topics_per_subscriber)", len(names), h.MaxTopicsPerSubscriber)
	}
	for _, n := range names {
		if err := hub.ClientTopicName(n); err != nil {
			return nil, "invalid", fmt.Errorf("granted %v", err)
		}
		if !h.serves(n, nil) {
			return nil, "undeclared", fmt.Errorf("granted topic %q is not declared on this route", n)
		}
	}
	return names, "", nil
}

// resolveGranted turns a request on a route with a grant into its topics:
// ?topic= picks among the granted ones, none means all of them.
func (h *SSEHandler) resolveGranted(r *http.Request, query url.Values) ([]hub.TopicRef, int, string) {
	granted, kind, err := h.grantedTopics(r)
	if err != nil {
		// Throttled like drops: a broken app (or a flood) costs a line a
		// second per kind of refusal.
		if ok, suppressed := h.dropLog.Allow("grant_" + kind); ok {
			if c := h.logger.Check(zap.WarnLevel, "subscriber refused: grant not honoured"); c != nil {
				c.Write(zap.String("grant", h.Grant), zap.String("client", stream.ClientForLog(r)), zap.Error(err),
					zap.Int("suppressed", suppressed))
			}
		}
		return nil, http.StatusForbidden, errGrantRefused
	}
	names := granted
	if requested := query["topic"]; len(requested) > 0 {
		var status int
		var msg string
		names, status, msg = h.pickTopics(requested, func(t string) (int, string) {
			// Never granted (grantedTopics refuses it), so a 403.
			if !slices.Contains(granted, t) {
				return http.StatusForbidden, fmt.Sprintf("topic %q is not granted to this request", t)
			}
			return 0, ""
		})
		if status != 0 {
			return nil, status, msg
		}
	}
	refs := make([]hub.TopicRef, 0, len(names))
	for _, n := range names {
		ref, ok := h.table.Lookup(n)
		if !ok { // cannot happen: granted names match the route's declarations
			return nil, http.StatusForbidden, errGrantRefused
		}
		refs = append(refs, ref)
	}
	return refs, 0, ""
}
