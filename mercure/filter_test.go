package mercure

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

func mustCompileAll(t testing.TB, s *MercureSelectors, sels ...MercureSelector) []*MercureMatcher {
	t.Helper()
	ms, err := s.CompileAll(sels, testHubURL)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func sel0x(v string) MercureSelector         { return MercureSelector{MercureTopicSelector, v} }
func selExact(v string) MercureSelector      { return MercureSelector{MercureExact, v} }
func selURLPattern(v string) MercureSelector { return MercureSelector{MercureURLPattern, v} }

type update struct {
	name    string
	topics  []string
	private bool
	want    bool
}

func checkDecider(t *testing.T, d *MercureDecider, updates []update) {
	t.Helper()
	for _, u := range updates {
		// Twice: the second answer comes from the decision cache.
		for round := 0; round < 2; round++ {
			if got := d.Allows(u.topics, u.private); got != u.want {
				t.Errorf("%s (round %d): Allows(%q, private=%v) = %v, want %v", u.name, round, u.topics, u.private, got, u.want)
			}
		}
	}
}

// The 0.x spec, section "Subscribers": the subscriber subscribes to
// https://example.com/books/{id}; its token's mercure.subscribe holds
// https://example.com/users/foo/{?topic}; the publisher sends a private
// update whose canonical topic is the book and whose alternate topic is
// the user's URL. Routing matches the canonical topic, authorization the
// alternate one: the update is delivered. A private update on the book
// alone is not.
func TestMercurePrivateUpdates0xSpecExample(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	d := s.Decider(
		mustCompileAll(t, s, sel0x("https://example.com/books/{id}")),
		mustCompileAll(t, s, sel0x("https://example.com/users/foo/{?topic}")),
	)
	const book = "https://example.com/books/1"
	const userAlt = "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
	checkDecider(t, d, []update{
		{"spec example: canonical routes, alternate authorizes", []string{book, userAlt}, true, true},
		{"private on the book alone", []string{book}, true, false},
		{"public on the book", []string{book}, false, true},
		{"public on the book with the alternate", []string{book, userAlt}, false, true},
		{"alternate first: topics count alike", []string{userAlt, book}, true, true},
		{"private for another user", []string{book, "https://example.com/users/bar/?topic=x"}, true, false},
		{"private on the user URL alone: authorized but not subscribed", []string{userAlt}, true, false},
		{"public on another resource", []string{"https://example.com/films/1"}, false, false},
		{"no topics", nil, false, false},
	})
}

// draft-08, section "Subscribers": routing
// matchURLPattern=https://example.com/books/:id, a token that grants
// subscribe on books/1 and books/7 (Exact). A private update for books/1 is
// delivered; one for books/2 is not, "even though the routing matcher would
// select it".
func TestMercurePrivateUpdates1xSpecExample(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	d := s.Decider(
		mustCompileAll(t, s, selURLPattern("https://example.com/books/:id")),
		mustCompileAll(t, s, selExact("https://example.com/books/1"), selExact("https://example.com/books/7")),
	)
	checkDecider(t, d, []update{
		{"private books/1", []string{"https://example.com/books/1"}, true, true},
		{"private books/7", []string{"https://example.com/books/7"}, true, true},
		{"private books/2", []string{"https://example.com/books/2"}, true, false},
		{"public books/2", []string{"https://example.com/books/2"}, false, true},
		{"public films/1", []string{"https://example.com/films/1"}, false, false},
	})
}

func TestMercurePrivateUpdatesNegative(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	const a, b = "https://example.com/a", "https://example.com/b"

	t.Run("anonymous gets public updates only", func(t *testing.T) {
		d := s.Decider(mustCompileAll(t, s, sel0x("*")), nil)
		checkDecider(t, d, []update{
			{"public a", []string{a}, false, true},
			{"private a", []string{a}, true, false},
			{"private a and b", []string{a, b}, true, false},
		})
	})
	t.Run("a token for A gets no private update only on B", func(t *testing.T) {
		d := s.Decider(mustCompileAll(t, s, sel0x("*")), mustCompileAll(t, s, sel0x(a)))
		checkDecider(t, d, []update{
			{"private a", []string{a}, true, true},
			{"private b", []string{b}, true, false},
			{"private b, alternate a", []string{b, a}, true, true},
			{"public b", []string{b}, false, true},
		})
	})
	t.Run("the token never widens what is subscribed", func(t *testing.T) {
		d := s.Decider(mustCompileAll(t, s, selExact(a)), mustCompileAll(t, s, selExact("*")))
		checkDecider(t, d, []update{
			{"private a", []string{a}, true, true},
			{"private b", []string{b}, true, false},
			{"public b", []string{b}, false, false},
		})
	})
	t.Run("subscribed to an alternate topic only", func(t *testing.T) {
		// 0.x Publication: dispatched to subscribers of the canonical or
		// an alternate topic.
		d := s.Decider(mustCompileAll(t, s, sel0x(b)), nil)
		checkDecider(t, d, []update{
			{"public a, alternate b", []string{a, b}, false, true},
			{"private a, alternate b, anonymous", []string{a, b}, true, false},
		})
	})
	t.Run("a template in the token authorizes what it matches", func(t *testing.T) {
		d := s.Decider(mustCompileAll(t, s, sel0x("https://example.com/{x}")), mustCompileAll(t, s, sel0x("https://example.com/a{/rest*}")))
		checkDecider(t, d, []update{
			{"private a", []string{a}, true, true},
			{"private a/1", []string{"https://example.com/a/1"}, true, false}, // not subscribed: {x} stops at '/'
			{"private b", []string{b}, true, false},
		})
	})
	t.Run("a token that grants nothing is anonymous for private updates", func(t *testing.T) {
		d := s.Decider(mustCompileAll(t, s, sel0x(a)), mustCompileAll(t, s))
		checkDecider(t, d, []update{
			{"private a", []string{a}, true, false},
			{"public a", []string{a}, false, true},
		})
	})
}

// Deciders are shared by subscribers whose matcher sets are the same, in
// any order and with repeats, and only by them.
func TestMercureDeciderInterning(t *testing.T) {
	// About 50 deciders of one exact matcher each fit in 4MiB.
	s := NewMercureSelectors(MercureSelectorConfig{CacheBytes: 50 * (DefaultMercureDecisionBytes + 600)})
	x, y := sel0x("https://example.com/{x}"), selExact("https://example.com/y")

	d1 := s.Decider(mustCompileAll(t, s, x, y), mustCompileAll(t, s, y))
	d2 := s.Decider(mustCompileAll(t, s, y, x, y), mustCompileAll(t, s, y, y))
	if d1 != d2 {
		t.Error("same sets in another order got different deciders")
	}
	distinct := []*MercureDecider{
		s.Decider(mustCompileAll(t, s, x), mustCompileAll(t, s, y)),
		s.Decider(mustCompileAll(t, s, x, y), nil),                     // anonymous
		s.Decider(mustCompileAll(t, s, y), mustCompileAll(t, s, x, y)), // lists swapped
		s.Decider(mustCompileAll(t, s, selExact("https://example.com/{x}"), y), mustCompileAll(t, s, y)),
	}
	for i, d := range distinct {
		if d == d1 {
			t.Errorf("distinct set %d shares the decider of another set", i)
		}
	}
	// Bounded under a flood of distinct sets; an evicted decider keeps
	// working for whoever holds it.
	for i := 0; i < 1000; i++ {
		s.Decider(mustCompileAll(t, s, selExact(fmt.Sprintf("t%d", i))), nil)
	}
	if n := s.deciders.len(); n > 50 || n == 0 {
		t.Errorf("%d deciders interned, capacity about 50", n)
	}
	if b := s.deciders.size(); b > s.cfg.CacheBytes {
		t.Errorf("deciders hold an estimated %d bytes, capacity %d", b, s.cfg.CacheBytes)
	}
	if !d1.Allows([]string{"https://example.com/y"}, true) || d1.Allows([]string{"https://example.com/z"}, true) {
		t.Error("an evicted decider stopped deciding correctly")
	}
}

// A flood of distinct topics does not grow a decider's memory past its
// cap, and answers stay right after the cache starts over.
func TestMercureDecisionCacheBounded(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{DecisionCache: 64})
	d := s.Decider(
		mustCompileAll(t, s, sel0x("https://example.com/rooms/{id}")),
		mustCompileAll(t, s, selURLPattern("https://example.com/rooms/:id(\\d+)")),
	)
	peak := 0
	for i := 0; i < 20000; i++ {
		topic := fmt.Sprintf("https://example.com/rooms/%d", i)
		if !d.Allows([]string{topic}, true) {
			t.Fatalf("private update on %s refused", topic)
		}
		if d.Allows([]string{fmt.Sprintf("https://example.com/rooms/x%d", i)}, true) {
			t.Fatalf("private update on a non-numeric room allowed")
		}
		peak = max(peak, d.cached())
	}
	if peak > 64 {
		t.Errorf("decision cache reached %d topics, cap 64", peak)
	}
	if peak == 0 {
		t.Error("decision cache never used")
	}
	// Exact and `*` matchers need no cache at all.
	e := s.Decider(mustCompileAll(t, s, selExact("a"), selExact("b")), mustCompileAll(t, s, sel0x("*")))
	for i := 0; i < 100; i++ {
		e.Allows([]string{fmt.Sprintf("t%d", i), "a"}, true)
	}
	if n := e.cached(); n != 0 {
		t.Errorf("exact-only decider cached %d topics", n)
	}
}

// The cache changes the cost, never the answer: cached and uncached
// deciders agree on random updates, also when used concurrently.
func TestMercureDecisionCacheAgreesWithoutCache(t *testing.T) {
	cached := NewMercureSelectors(MercureSelectorConfig{DecisionCache: 16})
	uncached := NewMercureSelectors(MercureSelectorConfig{DecisionCache: -1})
	build := func(s *MercureSelectors) *MercureDecider {
		return s.Decider(
			mustCompileAll(t, s, sel0x("https://example.com/{kind}/{id}"), selURLPattern("https://example.com/special/*"), selExact("x")),
			mustCompileAll(t, s, sel0x("https://example.com/books/{id}"), selURLPattern("https://example.com/:kind/7"), selExact("https://example.com/films/2")),
		)
	}
	dc, du := build(cached), build(uncached)
	if du.cacheCap != 0 {
		t.Fatal("DecisionCache -1 did not disable the cache")
	}
	pool := []string{"x", "y"}
	for _, kind := range []string{"books", "films", "special", "other"} {
		for id := 0; id < 10; id++ {
			pool = append(pool, fmt.Sprintf("https://example.com/%s/%d", kind, id))
		}
	}
	pool = append(pool, "https://example.com/special/a/b")

	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			for i := 0; i < 5000; i++ {
				topics := make([]string, 1+r.IntN(3))
				for j := range topics {
					topics[j] = pool[r.IntN(len(pool))]
				}
				private := r.IntN(2) == 0
				if a, b := dc.Allows(topics, private), du.Allows(topics, private); a != b {
					t.Errorf("Allows(%q, %v): cached %v, uncached %v", topics, private, a, b)
					return
				}
			}
		}(uint64(g))
	}
	wg.Wait()
}

// BenchmarkMercureDecider: 1,000 subscribers, updates on 10 topics, each
// op is one decision (one subscriber, one private update). Subscribers
// route on a URI template and are authorized by a per-user template (the
// 0.x spec's pattern), so every decision needs patterns.
//
//	nocache:  1,000 distinct deciders, no decision cache: templates run per decision
//	cache:    1,000 distinct deciders (one per user), each with its cache
//	interned: 1,000 subscribers with 10 distinct selector sets share 10 deciders
func BenchmarkMercureDecider(b *testing.B) {
	topics := make([][]string, 10)
	for i := range topics {
		book := fmt.Sprintf("https://example.com/books/%d", i)
		topics[i] = []string{book, fmt.Sprintf("https://example.com/users/u%d/?topic=https%%3A%%2F%%2Fexample.com%%2Fbooks%%2F%d", i%7, i)}
	}
	build := func(b *testing.B, cfg MercureSelectorConfig, users int) []*MercureDecider {
		s := NewMercureSelectors(cfg)
		ds := make([]*MercureDecider, 1000)
		for i := range ds {
			ds[i] = s.Decider(
				mustCompileAll(b, s, sel0x("https://example.com/books/{id}")),
				mustCompileAll(b, s, sel0x(fmt.Sprintf("https://example.com/users/u%d/{?topic}", i%users))),
			)
		}
		return ds
	}
	run := func(b *testing.B, ds []*MercureDecider) {
		allowed := 0
		for i := 0; b.Loop(); i++ {
			if ds[i%1000].Allows(topics[(i/1000)%10], true) {
				allowed++
			}
		}
		if allowed == 0 {
			b.Fatal("no decision allowed anything")
		}
	}
	b.Run("nocache", func(b *testing.B) { run(b, build(b, MercureSelectorConfig{DecisionCache: -1}, 1000)) })
	b.Run("cache", func(b *testing.B) { run(b, build(b, MercureSelectorConfig{}, 1000)) })
	b.Run("interned", func(b *testing.B) { run(b, build(b, MercureSelectorConfig{}, 10)) })
}

// Long topics do not make a decider's memory grow with the count cap:
// the topic text it remembers is bounded too.
func TestMercureDecisionCacheBoundedByBytes(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	d := s.Decider(mustCompileAll(t, s, selURLPattern("https://example.com/:a/*")), nil)
	peak := 0
	for i := 0; i < 500; i++ {
		topic := fmt.Sprintf("https://example.com/%d/%s", i, strings.Repeat("x", 8<<10))
		if !d.Allows([]string{topic}, false) {
			t.Fatal("a matching topic was refused")
		}
		d.mu.Lock()
		peak = max(peak, d.cacheBytes)
		d.mu.Unlock()
	}
	if peak > DefaultMercureDecisionBytes+9<<10 {
		t.Errorf("decider remembered %d bytes of topics, bound %d", peak, DefaultMercureDecisionBytes)
	}
	if peak == 0 {
		t.Error("decision cache never used")
	}
}
