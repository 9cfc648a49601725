package mercure

import (
	"crypto/sha256"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Which Mercure updates one subscriber receives, decided without a token or
// a template in sight: the handler builds a MercureDecider at subscribe
// time from the subscriber's own matchers (what it asked for) and its
// token's subscribe matchers (which private updates it may read), and the
// fan-out only calls Allows.
//
// The rule, from the spec:
//   - an update reaches a subscriber when one of its topics matches one of
//     the subscriber's matchers. In 0.x an update has a canonical topic and
//     alternate topics, and the hub "MUST dispatch this update to
//     subscribers that are subscribed to both canonical or alternate IRIs":
//     all of its topics count alike. (1.0 updates have exactly one topic,
//     the same rule with one element.)
//   - a private update additionally needs one of its topics, canonical or
//     alternate, to match one of the token's subscribe matchers (0.x
//     "Subscribers": "at least one topic of the update to dispatch
//     (canonical or alternate) matches at least one topic selector provided
//     in mercure.subscribe"; 1.0: the token grants subscribe on the topic).
//     The two topics need not be the same one: the 0.x spec's example routes
//     on the canonical topic and authorizes on an alternate one. The
//     subscriber's own matchers never widen what it may read, and a
//     subscriber without a token (anonymous) gets no private update.
//
// Cost: exact matchers are a set lookup; `*` a flag. Only templates and URL
// patterns run code per topic, so a decider that has some remembers, per
// topic string, what it decided: repeated updates on a topic cost a map
// lookup. The memory is bounded: when the map is full it is cleared, not
// grown. Subscribers whose matcher sets are the same share one decider
// (interned by a canonical key), and so share its remembered decisions.

// MercureDecider decides which updates one subscriber receives. It is safe
// for concurrent use, and shared between subscribers with the same
// matchers.
type MercureDecider struct {
	key         string
	route, auth mercureMatchSet
	cacheCap    int   // 0: nothing to remember (no patterns) or disabled
	memoSlot    uint8 // where events remember its decision (meta.go)

	mu         sync.Mutex
	cache      map[string]uint8 // topic → decisionBits
	cacheBytes int              // topic text in cache
}

// Decision bits remembered per topic: each half is decided lazily, so a
// public update never runs the token's patterns.
const (
	routeKnown uint8 = 1 << iota
	routeYes
	authKnown
	authYes
)

type mercureMatchSet struct {
	all      bool
	exact    map[string]struct{}
	patterns []*MercureMatcher
}

func newMercureMatchSet(ms []*MercureMatcher) mercureMatchSet {
	var s mercureMatchSet
	for _, m := range ms {
		switch m.kind {
		case matchWildcard:
			s.all = true
		case matchExact:
			if s.exact == nil {
				s.exact = make(map[string]struct{})
			}
			s.exact[m.value] = struct{}{}
		default:
			s.patterns = append(s.patterns, m)
		}
	}
	if s.all { // `*` makes the rest moot
		s.exact, s.patterns = nil, nil
	}
	return s
}

func (s *mercureMatchSet) none() bool { return !s.all && s.exact == nil && s.patterns == nil }

// quick answers without running a pattern when it can.
func (s *mercureMatchSet) quick(topic string) (match, decided bool) {
	if s.all {
		return true, true
	}
	if _, ok := s.exact[topic]; ok {
		return true, true
	}
	return false, len(s.patterns) == 0
}

func (s *mercureMatchSet) slow(topic string) bool {
	for _, m := range s.patterns {
		if m.Match(topic) {
			return true
		}
	}
	return false
}

// Decider returns the decider for a subscriber whose own matchers are
// subscribed and whose token's subscribe matchers are private (nil for an
// anonymous subscriber, or a token that grants no subscribe). Both come from
// CompileAll. Subscribers with the same sets, in any order, get the same
// decider.
func (s *MercureSelectors) Decider(subscribed, private []*MercureMatcher) *MercureDecider {
	// Interned by a digest of the canonical key: the key itself can be
	// 200 matchers of 4KiB, and the cache holds keys of forgotten
	// subscribers too.
	sum := sha256.Sum256([]byte(mercureDeciderKey(subscribed, private)))
	key := string(sum[:])
	size := int64(DefaultMercureDecisionBytes + 256)
	for _, m := range append(subscribed[:len(subscribed):len(subscribed)], private...) {
		size += int64(64 + len(m.value))
	}
	d, _ := s.deciders.getOrAdd(key, size, func() *MercureDecider {
		d := &MercureDecider{key: key, route: newMercureMatchSet(subscribed), auth: newMercureMatchSet(private),
			memoSlot: uint8(mercureMemoSlots.Add(1) % uint32(len(mercureMetaMemo{})))}
		if s.cfg.DecisionCache > 0 && (len(d.route.patterns) > 0 || len(d.auth.patterns) > 0) {
			d.cacheCap = s.cfg.DecisionCache
		}
		return d
	})
	return d
}

// mercureDeciderKey is canonical: each list sorted and deduplicated, so the
// order and repetition of query parameters or claim entries do not matter.
func mercureDeciderKey(subscribed, private []*MercureMatcher) string {
	keys := func(ms []*MercureMatcher) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.key
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	var b strings.Builder
	for _, part := range [][]string{keys(subscribed), keys(private)} {
		// Matcher keys are length-prefixed and control-free; the count
		// keeps one list's end from reading as the other's start.
		b.WriteString(strconv.Itoa(len(part)))
		b.WriteByte('\n')
		for _, k := range part {
			b.WriteString(strconv.Itoa(len(k)))
			b.WriteByte(':')
			b.WriteString(k)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Allows reports whether an update on topics (canonical first, then
// alternates; all count alike) reaches this subscriber.
func (d *MercureDecider) Allows(topics []string, private bool) bool {
	if private && d.auth.none() {
		return false // anonymous, or a token that grants no subscribe
	}
	routed, authorized := false, !private
	for _, t := range topics {
		r, a := d.decide(t, !routed, !authorized)
		routed = routed || r
		authorized = authorized || a
		if routed && authorized {
			return true
		}
	}
	return false
}

// decide answers what is asked about one topic: whether the subscriber's
// matchers select it (wantRoute) and whether the token's allow it
// (wantAuth). Patterns run at most once per topic while it is remembered.
func (d *MercureDecider) decide(topic string, wantRoute, wantAuth bool) (route, auth bool) {
	needRoute, needAuth := false, false
	if wantRoute {
		var decided bool
		if route, decided = d.route.quick(topic); !decided {
			needRoute = true
		}
	}
	if wantAuth {
		var decided bool
		if auth, decided = d.auth.quick(topic); !decided {
			needAuth = true
		}
	}
	if !needRoute && !needAuth {
		return route, auth
	}
	if d.cacheCap == 0 {
		if needRoute {
			route = d.route.slow(topic)
		}
		if needAuth {
			auth = d.auth.slow(topic)
		}
		return route, auth
	}

	d.mu.Lock()
	bits := d.cache[topic]
	d.mu.Unlock()
	if needRoute && bits&routeKnown != 0 {
		route, needRoute = bits&routeYes != 0, false
	}
	if needAuth && bits&authKnown != 0 {
		auth, needAuth = bits&authYes != 0, false
	}
	if !needRoute && !needAuth {
		return route, auth
	}
	// Run the patterns outside the lock: other publishes using this
	// decider are not held up by one miss.
	var add uint8
	if needRoute {
		route = d.route.slow(topic)
		add |= routeKnown
		if route {
			add |= routeYes
		}
	}
	if needAuth {
		auth = d.auth.slow(topic)
		add |= authKnown
		if auth {
			add |= authYes
		}
	}
	d.mu.Lock()
	if d.cache == nil {
		d.cache = make(map[string]uint8, min(d.cacheCap, 16))
	}
	if _, ok := d.cache[topic]; !ok {
		if len(d.cache) >= d.cacheCap || d.cacheBytes+len(topic) > DefaultMercureDecisionBytes {
			// Full: start over rather than grow or track recency. A
			// flood of distinct (or long) topics costs pattern runs,
			// never memory.
			clear(d.cache)
			d.cacheBytes = 0
		}
		d.cacheBytes += len(topic)
	}
	d.cache[topic] |= add
	d.mu.Unlock()
	return route, auth
}

// cached is how many topics the decider remembers, for tests.
func (d *MercureDecider) cached() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.cache)
}
