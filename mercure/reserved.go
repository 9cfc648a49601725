package mercure

import (
	"errors"
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
//
// Cost: the parser library builds a path string by repeated concatenation,
// so parsing costs about (path segments × length): a 128KiB topic of "a/"
// took 8s, a 2KiB one 5ms. A linear pre-test spares the parse to every
// topic that cannot be reserved (almost all); those that might be are
// parsed within a budget per request (mercureReservedBudget), beyond which
// the request is refused with 413.
type mercureReserved struct {
	base *whatwg.Url
	path string // the hub URL's path, normalized as the topics' are
	// last is the last segment of path, fully percent-decoded: a topic
	// whose fully decoded form does not contain it cannot resolve into
	// the namespace (see mayBeReserved). "" when path ends with "/".
	last   string
	budget int // what is left of mercureReservedBudget
}

// mercureReservedBudget bounds the parsing work of the reserved test for
// one request, as the sum over the topics parsed of path separators ×
// bytes (about 10ms). Only a topic naming the hub's last path segment is
// parsed, so no honest request comes near it.
const mercureReservedBudget = 4 << 20

// errMercureTopicTooCostly: the topics that might be in the reserved
// namespace are too costly to check (a limit: 413).
var errMercureTopicTooCostly = errors.New("the topics naming the hub's path have too many path segments to be checked against its reserved namespace")

// newMercureReserved builds the test for a hub URL (hubBaseURL: the one
// relative topics resolve against). Its path is what is reserved; a hub
// URL whose authority the parser refuses (an odd Host) keeps its scheme
// and path, which are all the resolution of a topic's path depends on.
func newMercureReserved(engine *url.URL) *mercureReserved {
	base, err := whatwg.Parse(engine.String())
	if err != nil {
		scheme := engine.Scheme
		if scheme == "" {
			scheme = "http"
		}
		if base, err = whatwg.Parse(scheme + "://hub.invalid" + engine.EscapedPath()); err != nil {
			base, _ = whatwg.Parse("http://hub.invalid/.well-known/mercure")
		}
	}
	mr := &mercureReserved{base: base, path: normalizeMercurePath(base.Pathname()), budget: mercureReservedBudget}
	if i := strings.LastIndexByte(mr.path, '/'); i >= 0 {
		mr.last = percentDecodeAll(mr.path[i+1:])
	}
	return mr
}

// check reports whether topic addresses the reserved namespace, or
// errMercureTopicTooCostly when the request's budget is spent.
func (mr *mercureReserved) check(topic string) (bool, error) {
	if !mr.mayBeReserved(topic) {
		return false, nil
	}
	cost := (strings.Count(topic, "/") + strings.Count(topic, "\\") + 1) * len(topic)
	if cost > mr.budget {
		return false, errMercureTopicTooCostly
	}
	mr.budget -= cost
	u, err := mr.base.Parse(topic)
	if err != nil || u.OpaquePath() {
		return false, nil
	}
	p := normalizeMercurePath(u.Pathname())
	// The spec's words: equal to the hub's path, or beginning with it
	// followed by "/".
	return p == mr.path || strings.HasPrefix(p, mr.path+"/"), nil
}

// mayBeReserved is a linear test that lets through every topic that may
// resolve into the namespace. Resolution only removes segments (dot
// segments) and percent-encodes characters, so the namespace's last
// segment in a resolved path comes from the topic itself, literally or
// percent-encoded, never from the hub's URL: a relative reference drops
// the base's last segment. The exceptions keep the base's path whole: an
// empty reference, or one of a query or fragment alone. Leading and
// trailing spaces are stripped by the parser (controls were refused
// before).
func (mr *mercureReserved) mayBeReserved(topic string) bool {
	t := strings.Trim(topic, " ")
	switch {
	case mr.last == "" || strings.ContainsAny(mr.last, ":|"): // no segment to look for; file: drive letters
		return true
	case t == "" || t[0] == '?' || t[0] == '#':
		return true
	case strings.Contains(t, mr.last):
		return true
	case strings.IndexByte(t, '%') < 0:
		return false
	}
	return strings.Contains(percentDecodeAll(t), mr.last)
}

// percentDecodeAll decodes every valid %XX of s.
func percentDecodeAll(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, ok := unhex2(s[i+1], s[i+2]); ok {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mercureReservedTopic is check for one topic (tests).
func mercureReservedTopic(topic string, engine *url.URL) bool {
	reserved, _ := newMercureReserved(engine).check(topic)
	return reserved
}

// normalizeMercurePath decodes the percent-encoded unreserved characters
// of a parsed path (RFC 3986: ALPHA, DIGIT, "-", ".", "_", "~"), so that
// /.well-known/%6Dercure is /.well-known/mercure, writes the other escapes
// in upper case, then removes the dot-segments a decoded "%2E" could form
// (the parser removed the others).
func normalizeMercurePath(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if c, ok := unhex2(p[i+1], p[i+2]); ok {
				if isUnreserved(c) {
					b.WriteByte(c)
				} else { // the other escapes in one case (RFC 3986, 6.2.2.1)
					b.WriteString(strings.ToUpper(p[i : i+3]))
				}
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

// mercureReservedBase is the parsed hub URL of a reserved-namespace test,
// kept between requests: parsing it with the WHATWG parser on every
// publish was 5% of the server's CPU in the publish benchmark. One entry
// (the last hub URL seen): a hub is reached by one URL, or by a few Hosts
// in turn, which cost a parse each as before; the Host is the client's to
// choose, so nothing keyed by it may grow.
//
// Sharing the parsed URL across goroutines is safe: the parser clones the
// base it resolves against (url.(*parser).BasicParser), and the one lazy
// field Clone reads (SearchParams) is built here before the URL is shared.
type mercureReservedBase struct {
	key        string // the hub URL it was parsed from
	base       *whatwg.Url
	path, last string
}

// reservedFor is newMercureReserved(hub), with the hub URL's parse kept
// for the next request to the same hub URL. Each request gets its own
// budget.
func (m *Handler) reservedFor(engine *url.URL) *mercureReserved {
	key := engine.String()
	if b := m.reservedBase.Load(); b != nil && b.key == key {
		return &mercureReserved{base: b.base, path: b.path, last: b.last, budget: mercureReservedBudget}
	}
	mr := newMercureReserved(engine)
	mr.base.SearchParams() // built now, not by the first concurrent Clone
	m.reservedBase.Store(&mercureReservedBase{key: key, base: mr.base, path: mr.path, last: mr.last})
	return mr
}
