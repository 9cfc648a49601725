package caddysse

import (
	"net/url"
	"strings"

	whatwg "github.com/nlnwa/whatwg-url/url"
)

// mercureReserved tests topics against the hub's reserved namespace: the
// path of the hub's URL and everything below it (spec, Publication and
// "Reserved Hub Namespace"). Those topics are the hub's own (subscription
// events); a publisher may not forge them, whatever its token allows.
//
// The test is the spec's, not a prefix test on the raw string: the topic is
// resolved against the hub's URL with the WHATWG URL parser (the one URL
// Pattern matching uses, so a topic a subscriber's pattern reads as the
// hub's path is refused here too): backslashes are slashes for special
// schemes, dot-segments are removed; then percent-encoded unreserved
// characters are decoded. The comparison is on the path alone, whatever the
// scheme or authority. A topic that cannot be parsed as a URL reference
// names no hub path and is not reserved.
type mercureReserved struct {
	base *whatwg.Url
	path string // the hub URL's path, normalized as the topics' are
}

// newMercureReserved builds the test for a hub URL (mercureHubURL: the one
// relative topics resolve against). Its path is what is reserved; a hub
// URL whose authority the parser refuses (an odd Host) keeps its scheme
// and path, which are all the resolution of a topic's path depends on.
func newMercureReserved(hub *url.URL) *mercureReserved {
	base, err := whatwg.Parse(hub.String())
	if err != nil {
		scheme := hub.Scheme
		if scheme == "" {
			scheme = "http"
		}
		if base, err = whatwg.Parse(scheme + "://hub.invalid" + hub.EscapedPath()); err != nil {
			base, _ = whatwg.Parse("http://hub.invalid/.well-known/mercure")
		}
	}
	return &mercureReserved{base: base, path: normalizeMercurePath(base.Pathname())}
}

// contains reports whether topic addresses the reserved namespace.
func (mr *mercureReserved) contains(topic string) bool {
	u, err := mr.base.Parse(topic)
	if err != nil || u.OpaquePath() {
		return false
	}
	p := normalizeMercurePath(u.Pathname())
	// The spec's words: equal to the hub's path, or beginning with it
	// followed by "/".
	return p == mr.path || strings.HasPrefix(p, mr.path+"/")
}

// mercureReservedTopic is contains for one topic (tests).
func mercureReservedTopic(topic string, hub *url.URL) bool {
	return newMercureReserved(hub).contains(topic)
}

// normalizeMercurePath decodes the percent-encoded unreserved characters
// of a parsed path (RFC 3986: ALPHA, DIGIT, "-", ".", "_", "~"), so that
// /.well-known/%6Dercure is /.well-known/mercure, then removes the
// dot-segments a decoded "%2E" could form (the parser removed the others).
func normalizeMercurePath(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if c, ok := unhex2(p[i+1], p[i+2]); ok && isUnreserved(c) {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return removeDotSegments(b.String())
}

func unhex2(a, b byte) (byte, bool) {
	hi, ok1 := unhex(a)
	lo, ok2 := unhex(b)
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments removes "." and ".." segments of an absolute path
// (RFC 3986, 5.2.4), keeping empty segments: "//" is not "/" in a URL.
func removeDotSegments(p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}
