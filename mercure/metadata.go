package mercure

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"
)

// The hub's identity as an OAuth 2.0 protected resource: its resource
// identifier (the aud its tokens carry), the URL relative topics and URL
// patterns resolve against, and its protected resource metadata (RFC 9728;
// the spec's "Protected Resource Metadata"), which every Bearer challenge
// points to.
//
// As Mercure 1.0 does, the identity is derived from each request (scheme,
// host and the hub's path, /.well-known/mercure) unless resource_identifier
// pins it: a hub reachable through several names then needs no
// configuration, and one audience shared across names is one option away.

// mercureHubPath is the path of the hub URL: Mercure's well-known path. The
// subscriptions API lives below it (subscriptions_api.go).
const mercureHubPath = "/.well-known/mercure"

// mercureMetadataPrefix is RFC 9728's well-known prefix: the metadata of the
// resource https://host/path is at https://host/.well-known/oauth-protected-resource/path.
const mercureMetadataPrefix = "/.well-known/oauth-protected-resource"

// checkResourceIdentifier checks a pinned resource identifier: an absolute
// URI (RFC 9728 wants an https URL without fragment; a URN is accepted as
// RFC 9068 allows any audience string, but then relative matchers resolve
// against the request's URL).
func checkResourceIdentifier(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Scheme == "":
		return fmt.Errorf("resource_identifier: %q is not an absolute URI (https://hub.example.com/.well-known/mercure)", hub.Truncate(s, 256))
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("resource_identifier: %q has a fragment; RFC 9728 forbids it", hub.Truncate(s, 256))
	case (u.Scheme == "https" || u.Scheme == "http") && u.Host == "":
		return fmt.Errorf("resource_identifier: %q has no host", hub.Truncate(s, 256))
	}
	return nil
}

// requestHubURL is the hub's URL as this request reached it: scheme (https
// when the connection is TLS), Host (lower-cased) and the hub path.
func requestHubURL(r *http.Request) *url.URL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, mercureMetadataPrefix+"/"):
		path = strings.TrimPrefix(path, mercureMetadataPrefix)
	case path == mercureHubPath || strings.HasPrefix(path, mercureHubPath+"/"):
		path = mercureHubPath
	default:
		// A hub served elsewhere (/hub): its subscriptions API is below
		// it, and the hub's own path is what comes before that.
		if hubName, _, ok := splitSubscriptionsPath(path); ok {
			path = hubName
		}
	}
	return &url.URL{Scheme: scheme, Host: strings.ToLower(r.Host), Path: path}
}

// resourceIdentifier is the hub's resource identifier for a request: the
// pinned resource_identifier, else derived from the request
// (scheme://host/.well-known/mercure). A token's aud must contain it.
func (m *Handler) resourceIdentifier(r *http.Request) string {
	if m.auth != nil && m.auth.resource != "" {
		return m.auth.resource
	}
	// Every publish checks its token's aud against it, and a hub is
	// mostly reached under one name: the last one derived is kept, which
	// saves building and escaping a URL per request.
	tls := r.TLS != nil
	if d := m.derived.Load(); d != nil && d.tls == tls && d.host == r.Host && d.path == r.URL.Path {
		return d.id
	}
	id := requestHubURL(r).String()
	m.derived.Store(&derivedResource{tls: tls, host: r.Host, path: r.URL.Path, id: id})
	return id
}

// derivedResource is a resource identifier derived from a request, with
// what it was derived from.
type derivedResource struct {
	tls        bool
	host, path string
	id         string
}

// hubBaseURL is the URL relative topics and relative URL patterns (the
// request's and the tokens') resolve against, and whose path is the
// reserved namespace: the pinned resource identifier when it is an http(s)
// URL, so that a client's Host cannot move what a token's relative pattern
// means; else the hub's URL as the request reached it.
func (m *Handler) hubBaseURL(r *http.Request) *url.URL {
	if m.auth != nil && m.auth.resource != "" {
		if u, err := url.Parse(m.auth.resource); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			return u
		}
	}
	return requestHubURL(r)
}

// metadataURL is where the protected resource metadata of a resource
// identifier is (RFC 9728 section 3.1): the well-known prefix inserted
// between its host and its path. "" for a resource that is not an http(s)
// URL (a URN): then the metadata is at the request's derived location.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + mercureMetadataPrefix + path
}

// resourceMetadataURL is the metadata URL the challenges of this request
// point to.
func (m *Handler) resourceMetadataURL(r *http.Request) string {
	if s := metadataURL(m.resourceIdentifier(r)); s != "" {
		return s
	}
	return metadataURL(requestHubURL(r).String())
}

// bearerChallenge is the WWW-Authenticate value of a refusal: a bare
// challenge (no error code) when no token was presented, the RFC 6750
// error otherwise, and always resource_metadata (RFC 9728 section 5.1).
func (m *Handler) bearerChallenge(r *http.Request, code string) string {
	params := []string{}
	if code != "" {
		params = append(params, `error="`+code+`"`)
	}
	params = append(params, `resource_metadata="`+m.resourceMetadataURL(r)+`"`)
	return "Bearer " + strings.Join(params, ", ")
}

// mercureMetadata is the protected resource metadata document.
type mercureMetadata struct {
	Resource                           string   `json:"resource"`
	AuthorizationServers               []string `json:"authorization_servers,omitempty"`
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported"`
	BearerMethodsSupported             []string `json:"bearer_methods_supported"`
	MercureCookie                      string   `json:"mercure_cookie,omitempty"`
	MercureSubscriptions               bool     `json:"mercure_subscriptions,omitempty"`
}

// isMetadataRequest reports a request for this hub's metadata: the
// well-known prefix followed by the path of the resource identifier. With
// a pinned identifier, its path; derived, the path of whatever hub URL the
// request names (the handler is the hub on every path its route sends it,
// and its challenges point there).
func (m *Handler) isMetadataRequest(r *http.Request) bool {
	suffix, ok := strings.CutPrefix(r.URL.Path, mercureMetadataPrefix+"/")
	if !ok || suffix == "" {
		return false
	}
	if m.auth != nil && m.auth.resource != "" {
		u, err := url.Parse(m.auth.resource)
		if err != nil || u.Host == "" {
			return "/"+suffix == mercureHubPath
		}
		return "/"+suffix == strings.TrimSuffix(u.Path, "/")
	}
	return true
}

// serveMetadata answers the protected resource metadata document when r
// asks for it; served reports whether it did. The document is public (no
// token), as RFC 9728 means it, so that a client without a token learns
// where to get one.
func (m *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) (served bool, err error) {
	if !m.isMetadataRequest(r) {
		return false, nil
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return true, stream.PlainError(w, http.StatusMethodNotAllowed, "the protected resource metadata answers GET")
	}
	doc := mercureMetadata{
		Resource:                           m.resourceIdentifier(r),
		AuthorizationDetailsTypesSupported: []string{mercureAuthorizationDetailType},
		BearerMethodsSupported:             []string{"header"},
		MercureSubscriptions:               m.Subscriptions,
	}
	if m.auth != nil {
		doc.AuthorizationServers = m.auth.authServers
		// The modern cookie (or cookie_name): the one a 1.0 client sets.
		doc.MercureCookie = m.auth.cookieNames[0]
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return true, err
	}
	w.Header().Set("Content-Type", "application/json")
	// The document says the same to everyone; any page may read it.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return true, nil
	}
	_, err = w.Write(body)
	return true, err
}

// errNoPublisherKey is the configuration error of a hub no publisher can
// publish to.
var errNoPublisherKey = errors.New("sse_mercure: give an issuer with a publisher key (issuer <iss> { publisher { jwt <key> } }), " +
	"or publisher_jwt or jwks_url: without a key no update can be published")
