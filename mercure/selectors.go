package mercure

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/ssehub/caddy-sse/internal/hub"

	"go.uber.org/zap"

	"github.com/dunglas/go-urlpattern"
	"github.com/yosida95/uritemplate/v3"
)

// Mercure topic selectors (also called topic matchers), compiled once and
// shared. Which topics a Mercure subscriber gets, and which private updates
// its token lets it read, are both lists of selectors; this file turns a
// selector string into a MercureMatcher, and filter.go combines a
// subscriber's matchers into the per-subscriber decision the fan-out asks.
//
// Built from the protocol's public text (draft-dunglas-mercure), never from
// the Mercure hub's code:
//
//   - 0.x (the widely deployed hubs; spec section "Topic Selectors"): a
//     `topic=` query parameter, or a `mercure.subscribe`/`mercure.publish`
//     claim entry, is any string. A topic matches it when the selector is
//     `*`, when both are exactly the same string, or when the selector is a
//     valid RFC 6570 URI template that the topic matches. A string that is
//     not a valid template is therefore just an exact selector, not an error.
//   - 1.0 (spec "Matcher Types"): the `match` (or `match_exact`) parameter
//     and the exact matcher type compare bytes exactly; `match_urlpattern`
//     and the urlpattern type use the WHATWG URL Pattern standard, relative
//     patterns and relative topics resolved against the hub's URL. `*`
//     matches every topic whatever the type. (Token entries spell the types
//     themselves; ParseMercureMatchType reads the draft-08 token spelling.)
//
// Cost: a template compiles to a Go regexp and a URL pattern's components
// compile to Go regexps, all linear-time (the spec requires RE2-like
// engines for URL patterns). Compiling is the expensive part: its cost is
// estimated from the text and bounded before anything is compiled
// (selectors_cost.go), and compiled selectors sit in an LRU bounded
// by estimated bytes, keyed by the selector: 10,000 subscribers with the
// same selector compile it once.

// MercureMatcherType says how a selector string is read.
type MercureMatcherType uint8

const (
	// MercureTopicSelector is a 0.x topic selector: `*`, an exact string, or
	// an RFC 6570 URI template (`topic=` and the `mercure` claim).
	MercureTopicSelector MercureMatcherType = iota + 1
	// MercureExact is the 1.0 Exact matcher (`match=`, matchType "Exact").
	MercureExact
	// MercureURLPattern is the 1.0 URLPattern matcher (`matchURLPattern=`
	// or `match_urlpattern=`, matchType "URLPattern").
	MercureURLPattern
)

// String is the matcher type's canonical name, as the 1.0 subscription
// events and API spell it ("Exact", "URLPattern"); a 0.x selector has no
// matchType and is called "topic".
func (t MercureMatcherType) String() string {
	switch t {
	case MercureTopicSelector:
		return "topic"
	case MercureExact:
		return "Exact"
	case MercureURLPattern:
		return "URLPattern"
	}
	return fmt.Sprintf("MercureMatcherType(%d)", uint8(t))
}

// MercureSubscribeParam reads a subscribe parameter's name (query or
// QUERY body). ok is false for parameters that are not matchers
// (last_event_id, access_token, ...). The names are case-sensitive, as the
// spec's Subscription section says:
//
//   - modern mode: `match` and `match_exact` (exact), `match_urlpattern`
//     (URL pattern). Any other name in the reserved `match` namespace (equal
//     to `match` or beginning with it, ASCII case-insensitively) is an
//     error, a 400, so that a misspelled matcher fails loudly instead of
//     matching nothing; so is `topic`, the 0.x parameter.
//   - compatibility mode also reads `topic` (0.x: URI templates and plain
//     strings). The draft-era spellings `matchURLPattern` and `matchExact`
//     stay errors: no released hub had them (0.24.2 knew only `topic`, 1.0
//     only the names above), so accepting them would invent a dialect.
func MercureSubscribeParam(name string, compat bool) (t MercureMatcherType, ok bool, err error) {
	switch name {
	case "match", "match_exact":
		return MercureExact, true, nil
	case "match_urlpattern":
		return MercureURLPattern, true, nil
	case "topic":
		if compat {
			return MercureTopicSelector, true, nil
		}
		return 0, false, errors.New("topic= is the Mercure 0.x parameter: use match= (exact) or match_urlpattern= (URL pattern); 0.x clients need protocol_version_compatibility 8")
	}
	if len(name) >= 5 && strings.EqualFold(name[:5], "match") {
		return 0, false, fmt.Errorf("unknown topic matcher parameter %q: use match, match_exact or match_urlpattern (the names are case-sensitive)", hub.Truncate(name, 64))
	}
	return 0, false, nil
}

// ParseMercureMatchType reads the matchType of a 1.0 authorization_details
// topic entry: absent means Exact; the value is case-sensitive.
func ParseMercureMatchType(s string) (MercureMatcherType, error) {
	switch s {
	case "", "Exact":
		return MercureExact, nil
	case "URLPattern":
		return MercureURLPattern, nil
	}
	return 0, fmt.Errorf("unknown matchType %q: use Exact or URLPattern", hub.Truncate(s, 64))
}

// MercureSelector is one selector as received: its type and its text.
type MercureSelector struct {
	Type  MercureMatcherType
	Value string
}

// IsWildcard reports the reserved selector "*", which matches every topic
// whatever its type.
func (s MercureSelector) IsWildcard() bool { return s.Value == "*" }

// Defaults of MercureSelectorConfig. The matcher count and length are the
// limits Mercure documents for its own hub (100 matchers of 4,096 bytes).
const (
	DefaultMercureMaxSelectorLen   = 4096
	DefaultMercureMaxSelectors     = 100
	DefaultMercureCompiledCacheMiB = 32
	DefaultMercureDecisionsPerSub  = 128
	// DefaultMercureDecisionBytes bounds the topic text one decider
	// remembers decisions for.
	DefaultMercureDecisionBytes = 64 << 10
)

// MercureSelectorConfig bounds the work selectors can cause. Zero fields take
// the defaults above.
type MercureSelectorConfig struct {
	// MaxLength caps one selector, in bytes.
	MaxLength int
	// MaxSelectors caps the selectors of one list: a request's selector
	// parameters, or one token's subscribe selectors.
	MaxSelectors int
	// MaxPatternCost caps the estimated compile cost of one pattern
	// (selectors_cost.go).
	MaxPatternCost int
	// PatternBudget caps the estimated compile cost of one list's
	// patterns together.
	PatternBudget int
	// CacheBytes bounds, by estimated size, the compiled selectors kept
	// for sharing, least recently used forgotten first; and, separately,
	// the deciders kept for sharing (a forgotten one keeps working for the
	// subscribers that hold it).
	CacheBytes int64
	// DecisionCache is how many topics one decider remembers its decision
	// for; when full (or past DefaultMercureDecisionBytes of topic text)
	// it starts over. Negative disables the cache.
	DecisionCache int
	// Logger, when set, gets a debug entry for every compilation: what an
	// operator (and a test) can count.
	Logger *zap.Logger
}

func (c MercureSelectorConfig) withDefaults() MercureSelectorConfig {
	if c.MaxLength <= 0 {
		c.MaxLength = DefaultMercureMaxSelectorLen
	}
	if c.MaxSelectors <= 0 {
		c.MaxSelectors = DefaultMercureMaxSelectors
	}
	if c.MaxPatternCost <= 0 {
		c.MaxPatternCost = DefaultMercureMaxPatternCost
	}
	if c.PatternBudget <= 0 {
		c.PatternBudget = DefaultMercurePatternBudget
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = DefaultMercureCompiledCacheMiB << 20
	}
	if c.DecisionCache == 0 {
		c.DecisionCache = DefaultMercureDecisionsPerSub
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// MercureSelectorError is a selector that cannot be used. A subscribe
// request answers it with 400; in a token it makes the token invalid (401).
type MercureSelectorError struct {
	Type     MercureMatcherType
	Selector string // truncated for messages and logs
	Reason   string
}

func (e *MercureSelectorError) Error() string {
	if e.Selector == "" {
		return fmt.Sprintf("%s selector: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("%s selector %q: %s", e.Type, e.Selector, e.Reason)
}

// MercureSelectors compiles selectors and keeps what it compiled, and the
// deciders built from them, for every subscriber of one handler to share.
// It is safe for concurrent use.
type MercureSelectors struct {
	cfg      MercureSelectorConfig
	compiled *mercureLRU[*compiledSelector]
	deciders *mercureLRU[*MercureDecider]
	compiles atomic.Int64 // compilations run, for tests
}

// NewMercureSelectors returns an empty compiler and cache.
func NewMercureSelectors(cfg MercureSelectorConfig) *MercureSelectors {
	cfg = cfg.withDefaults()
	return &MercureSelectors{
		cfg:      cfg,
		compiled: newMercureLRU[*compiledSelector](cfg.CacheBytes),
		deciders: newMercureLRU[*MercureDecider](cfg.CacheBytes),
	}
}

// Config returns the limits in force, defaults filled in.
func (s *MercureSelectors) Config() MercureSelectorConfig { return s.cfg }

// Compiles is how many compilations ran (cache misses), for tests and
// diagnostics.
func (s *MercureSelectors) Compiles() int64 { return s.compiles.Load() }

type compiledSelector struct {
	once sync.Once
	m    *MercureMatcher
	err  error
}

// Check applies every rule that needs no compilation: the text (length,
// UTF-8, control and format characters) and the estimated compile cost.
// It returns the cost. A request's selectors are checked before its token
// is, and compiled only after.
func (s *MercureSelectors) Check(sel MercureSelector) (int, error) {
	if reason := s.checkText(sel.Value); reason != "" {
		return 0, &MercureSelectorError{Type: sel.Type, Selector: hub.Truncate(sel.Value, 64), Reason: reason}
	}
	switch sel.Type {
	case MercureExact, MercureTopicSelector, MercureURLPattern:
	default:
		return 0, &MercureSelectorError{Type: sel.Type, Selector: hub.Truncate(sel.Value, 64), Reason: "unknown matcher type"}
	}
	cost, reason := selectorCost(sel)
	if reason == "" && cost > s.cfg.MaxPatternCost {
		reason = fmt.Sprintf("is too costly to compile: its groups expand to about %s regexp instructions, at most %d are allowed (max_pattern_cost)", costString(cost), s.cfg.MaxPatternCost)
	}
	if reason != "" {
		return 0, &MercureSelectorError{Type: sel.Type, Selector: hub.Truncate(sel.Value, 64), Reason: reason}
	}
	return cost, nil
}

// CheckAll checks one list (a request's, or a token's): the count, each
// selector, and the list's total cost against the pattern budget.
func (s *MercureSelectors) CheckAll(sels []MercureSelector) error {
	if len(sels) > s.cfg.MaxSelectors {
		t := MercureTopicSelector
		if len(sels) > 0 {
			t = sels[0].Type
		}
		return &MercureSelectorError{Type: t, Reason: fmt.Sprintf("%d selectors given; at most %d are allowed", len(sels), s.cfg.MaxSelectors)}
	}
	total := 0
	for _, sel := range sels {
		cost, err := s.Check(sel)
		if err != nil {
			return err
		}
		if total = satAdd(total, cost); total > s.cfg.PatternBudget {
			return &MercureSelectorError{Type: sel.Type, Reason: fmt.Sprintf("the patterns together are too costly to compile: over %d (pattern_budget); use fewer or simpler patterns", s.cfg.PatternBudget)}
		}
	}
	return nil
}

// Compile turns one selector into a matcher, or returns a
// *MercureSelectorError. baseURL is the hub's URL (for example
// "https://example.com/.well-known/mercure"): URL patterns and the topics
// they are matched against are resolved against it when relative; other
// types ignore it. The result is cached and shared: do not modify it.
func (s *MercureSelectors) Compile(sel MercureSelector, baseURL string) (*MercureMatcher, error) {
	cost, err := s.Check(sel)
	if err != nil {
		return nil, err
	}
	if sel.Type != MercureURLPattern {
		baseURL = "" // only URL patterns read it: do not split the cache by host
	}
	key := mercureMatcherKey(sel.Type, sel.Value, baseURL)
	c, _ := s.compiled.getOrAdd(key, compiledSize(sel, baseURL, cost), func() *compiledSelector { return &compiledSelector{} })
	// Compiling runs outside the cache's lock, once per entry however many
	// subscribers ask for the same selector at the same moment.
	c.once.Do(func() {
		s.compiles.Add(1)
		if sel.Type != MercureExact && sel.Value != "*" {
			s.cfg.Logger.Debug("mercure matcher compiled", zap.Stringer("type", sel.Type),
				zap.Int("bytes", len(sel.Value)), zap.Int("cost", cost))
		}
		c.m, c.err = compileMercureSelector(sel, baseURL, key)
	})
	return c.m, c.err
}

// CompileAll checks one list of selectors (CheckAll), then compiles them.
// The matchers come back in the list's order, one per selector, duplicates
// included.
func (s *MercureSelectors) CompileAll(sels []MercureSelector, baseURL string) ([]*MercureMatcher, error) {
	if err := s.CheckAll(sels); err != nil {
		return nil, err
	}
	out := make([]*MercureMatcher, 0, len(sels))
	for _, sel := range sels {
		m, err := s.Compile(sel, baseURL)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func costString(cost int) string {
	if cost >= math.MaxInt32 {
		return "unbounded"
	}
	return strconv.Itoa(cost)
}

// checkText applies what every type shares: not empty, bounded, and, as
// the spec requires of matcher values, UTF-8 without C0, DEL or C1 control
// characters nor Unicode format characters (Cf: zero-width joiners,
// bidirectional overrides, which would make two matchers look alike). The
// empty string is refused because no topic is empty.
func (s *MercureSelectors) checkText(v string) string {
	if v == "" {
		return "is empty"
	}
	if len(v) > s.cfg.MaxLength {
		return fmt.Sprintf("is %d bytes; at most %d are allowed", len(v), s.cfg.MaxLength)
	}
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
			return "contains a control character"
		}
		if r >= 0xad && unicode.Is(unicode.Cf, r) {
			return fmt.Sprintf("contains the format character U+%04X", r)
		}
	}
	return ""
}

func mercureMatcherKey(t MercureMatcherType, value, baseURL string) string {
	// Length-prefixed, so no value can forge another key.
	return fmt.Sprintf("%d:%d:%s%s", t, len(baseURL), baseURL, value)
}

type mercureMatchKind uint8

const (
	matchWildcard mercureMatchKind = iota
	matchExact
	matchTemplate
	matchURLPattern
)

// MercureMatcher is a compiled selector. Match is safe for concurrent use.
type MercureMatcher struct {
	typ   MercureMatcherType
	value string
	key   string
	kind  mercureMatchKind
	re    *regexp.Regexp         // matchTemplate
	pat   *urlpattern.URLPattern // matchURLPattern
	base  string                 // matchURLPattern
}

// Type is the selector's matcher type, Value its text as given.
func (m *MercureMatcher) Type() MercureMatcherType { return m.typ }

// Value is the selector's text as given.
func (m *MercureMatcher) Value() string { return m.value }

// Match reports whether topic is selected.
func (m *MercureMatcher) Match(topic string) bool {
	switch m.kind {
	case matchWildcard:
		return true
	case matchExact:
		return topic == m.value
	case matchTemplate:
		// The 0.x steps: the same string first (so a template also selects
		// itself, which authorizing selectors by selectors relies on),
		// then the template.
		return topic == m.value || m.re.MatchString(topic)
	case matchURLPattern:
		return m.testPattern(topic)
	}
	return false
}

// The evaluation cost limit of URL patterns (the spec's "URL Pattern":
// a hub MUST bound the cost of evaluating a pattern, and a pattern whose
// limit is reached does not match). The WHATWG URL parser the pattern
// library uses builds a path in time quadratic in its segments: a topic
// of 1,000 segments costs ~5 ms per pattern, one of 64K segments minutes.
// A topic is an identifier, not a document; one over these bounds is not
// tested against any URL pattern (16 KiB, 128 segments). Exact matching
// and "*" still apply.
const (
	mercurePatternMaxTopic    = 16 << 10
	mercurePatternMaxSegments = 128
)

// patternTestable reports whether topic is within the URL pattern
// evaluation cost limit.
func patternTestable(topic string) bool {
	if len(topic) > mercurePatternMaxTopic {
		return false
	}
	n := 0
	for i := 0; i < len(topic); i++ {
		if c := topic[i]; c == '/' || c == '\\' {
			if n++; n > mercurePatternMaxSegments {
				return false
			}
		}
	}
	return true
}

// testPattern runs the URL pattern. The library parses the topic as a URL;
// a panic on some odd input must cost one non-match, not the server.
func (m *MercureMatcher) testPattern(topic string) (ok bool) {
	if !patternTestable(topic) {
		return false
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return m.pat.Test(topic, m.base)
}

func compileMercureSelector(sel MercureSelector, baseURL, key string) (*MercureMatcher, error) {
	m := &MercureMatcher{typ: sel.Type, value: sel.Value, key: key, kind: matchExact}
	if sel.Value == "*" {
		// Reserved in every version and type: recognized before the type.
		m.kind = matchWildcard
		return m, nil
	}
	switch sel.Type {
	case MercureExact:
	case MercureTopicSelector:
		// Only a string with an expression can select more than itself.
		if strings.IndexByte(sel.Value, '{') >= 0 {
			if re := uriTemplateRegexp(sel.Value); re != nil {
				m.kind, m.re = matchTemplate, re
			}
		}
	case MercureURLPattern:
		pat, err := newURLPattern(sel.Value, baseURL)
		if err != nil {
			return nil, &MercureSelectorError{Type: sel.Type, Selector: hub.Truncate(sel.Value, 64), Reason: err.Error()}
		}
		m.kind, m.pat, m.base = matchURLPattern, pat, baseURL
	default:
		return nil, &MercureSelectorError{Type: sel.Type, Selector: hub.Truncate(sel.Value, 64), Reason: "unknown matcher type"}
	}
	return m, nil
}

// uriTemplateRegexp returns the regexp a valid RFC 6570 template compiles
// to, or nil when the string is no valid template (then, per the 0.x spec,
// it selects only itself). The library panics when the regexp it builds is
// refused (over a thousand variables in one expression exceed Go's repeat
// limit); that is also "not a usable template".
func uriTemplateRegexp(s string) (re *regexp.Regexp) {
	defer func() {
		if recover() != nil {
			re = nil
		}
	}()
	t, err := uritemplate.New(s)
	if err != nil || len(t.Varnames()) == 0 {
		return nil
	}
	return t.Regexp()
}

func newURLPattern(s, baseURL string) (pat *urlpattern.URLPattern, err error) {
	defer func() {
		if recover() != nil {
			pat, err = nil, fmt.Errorf("not a valid URL pattern")
		}
	}()
	// No options: the spec forbids ignoreCase.
	pat, err = urlpattern.New(s, baseURL, nil)
	if err != nil {
		if errors.Is(err, urlpattern.ErrNoBaseURL) {
			return nil, fmt.Errorf("relative URL pattern and the hub's URL is unknown")
		}
		// The library's errors may dump its tokenizer, addresses included:
		// keep the first clause only.
		msg := err.Error()
		if i := strings.Index(msg, ": &"); i >= 0 {
			msg = msg[:i]
		}
		return nil, fmt.Errorf("not a valid URL pattern (%s)", hub.Truncate(msg, 120))
	}
	return pat, nil
}

// mercureLRU is a small map plus recency list under one mutex, bounded by
// the estimated bytes of its entries (a count bound would let a few huge
// entries pin gigabytes). Values are created under the lock, so they must
// be cheap to create (a holder whose expensive part is filled in later, as
// compiledSelector's once).
type mercureLRU[V any] struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	items    map[string]*list.Element
	order    list.List // front: most recently used
}

type mercureLRUEntry[V any] struct {
	key  string
	val  V
	size int64
}

func newMercureLRU[V any](maxBytes int64) *mercureLRU[V] {
	return &mercureLRU[V]{maxBytes: maxBytes, items: make(map[string]*list.Element)}
}

// getOrAdd returns the value for key, making it with mk when missing (size
// is its estimated bytes, key excluded) and forgetting the least recently
// used entries past the capacity. An entry larger than the whole capacity
// is returned but not kept.
func (c *mercureLRU[V]) getOrAdd(key string, size int64, mk func() V) (v V, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*mercureLRUEntry[V]).val, true
	}
	v = mk()
	size += int64(len(key)) + 128 // the key, the map and list entries
	c.items[key] = c.order.PushFront(&mercureLRUEntry[V]{key: key, val: v, size: size})
	c.bytes += size
	for c.bytes > c.maxBytes && c.order.Len() > 0 {
		old := c.order.Back()
		e := old.Value.(*mercureLRUEntry[V])
		c.order.Remove(old)
		delete(c.items, e.key)
		c.bytes -= e.size
	}
	return v, false
}

func (c *mercureLRU[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// size is the estimated bytes held.
func (c *mercureLRU[V]) size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
