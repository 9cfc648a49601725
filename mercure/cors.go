package mercure

import (
	"fmt"
	"slices"

	"github.com/ssehub/caddy-sse/internal/stream"
)

// Cross-origin pages and the Mercure hub: `origins` and `publish_origins`.
//
// Two options, two questions:
//
//   - origins (cors.go, the sse handler's option) is CORS: the pages of
//     which origins may READ the hub's answers when their request carries
//     credentials. A subscribing EventSource({withCredentials: true})
//     needs it to see the stream; a fetch that publishes needs it to see
//     the update's id (and, with an Authorization header, to get past the
//     preflight). A request from an origin not listed is answered without
//     CORS headers, as the Mercure spec has it (the headers go to an
//     allowlist only) and Mercure's hub answers: the browser hides the
//     answer from the page, and a preflight's refusal stops the request.
//     `*` (Mercure's `cors_origins *`) admits every origin without
//     credentials (cors.go). Without origins the hub sends no CORS
//     headers, as before.
//   - publish_origins (token.go, CheckCookieOrigin) is the CSRF
//     rule: which origins may PUBLISH with a cookie. CORS cannot be that
//     rule: an HTML form posts across sites without asking anyone, with
//     the visitor's cookies, so the hub refuses a cookie-authorized publish
//     from any origin but its own and those listed, whatever origins says.
//
// So a page of another origin that publishes with the cookie needs its
// origin in both. When origins is set, an origin in publish_origins that
// origins does not allow is a configuration error: CORS would refuse its
// requests before the cookie is checked, so listing it could only
// mislead. (Without origins, publish_origins alone admits form posts and
// no-cors fetches, whose answers the page cannot read.) A token sent in
// the Authorization header is never subject to publish_origins: another
// site cannot make a visitor's browser send it.

// mercureCORSHeaders are the request headers a preflight to an sse_mercure
// route may ask for: an EventSource's, and Authorization, which fetch
// (publishing) and EventSource polyfills send. The publish body's
// form-urlencoded Content-Type is safelisted: no preflight asks for it.
var mercureCORSHeaders = append(slices.Clip(stream.EventSourceHeaders), "authorization")

// mercureExposedHeaders are the answer's headers a page of another origin
// may read: Link carries the subscriptions API's cursor (the spec requires
// it exposed), Mercure-Last-Event-ID where a subscription starts (for
// fetch-based EventSource polyfills).
const mercureExposedHeaders = "Link, Mercure-Last-Event-ID"

// corsPolicy builds the route's CORS policy from origins, checked against
// publish_origins; nil without origins.
func (m *Handler) corsPolicy() (*stream.CORSPolicy, error) {
	c, err := stream.NewCORSPolicy(m.Origins)
	if c == nil || err != nil {
		return nil, err
	}
	// QUERY subscribes with the selectors in a form body (spec,
	// Subscription); its form Content-Type is safelisted.
	c.Methods = "GET, HEAD, POST, QUERY"
	c.Headers = mercureCORSHeaders
	c.ServesUnlisted = true
	c.Expose = mercureExposedHeaders
	if c.AnyOrigin() {
		return c, nil
	}
	for _, o := range m.PublishOrigins {
		if n, err := stream.NormalizeOrigin(o); err == nil && !c.Listed(n) {
			return nil, fmt.Errorf("publish_origins: %s is not in origins: its pages' requests would be refused (CORS) before the cookie is checked; list it in origins too", n)
		}
	}
	return c, nil
}
