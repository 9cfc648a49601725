package mercure

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// heapRetained runs f and returns the heap it left reachable (through
// what f returns, kept alive here), after a collection on each side: a
// structural measure, not a timing.
func heapRetained(f func() any) int64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	kept := f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// Hole 2: URL-pattern regexp groups went straight to Go's regexp. Eight
// 1KiB patterns of `[^\x00]{1000}` groups compiled for 2s and pinned 28MiB
// before the fix (64 of them fit in one request, 4,096 in the cache).
// Now their cost is estimated from the text and they are refused before
// anything is compiled.
func TestMercureCostlyPatternsRefusedUncompiled(t *testing.T) {
	costly := []string{
		"/:a(" + strings.Repeat(`[^\x00]{1000}`, 78) + ")",
		"/:a(" + strings.Repeat(`\pL{1000}`, 90) + ")",
		"/:a(" + strings.Repeat(`\pL{100}`, 2) + ")",                   // Unicode classes cost their ranges
		"/:a((?:(?:(?:x+)+)+)+)",                                       // nested quantifiers
		"/:a(" + strings.Repeat("(?:[a-z]{100}){10}", 5) + ")",         // repeats multiplied out
		"/:a(((((((((((x))))))))))))",                                  // nested groups
		"/" + strings.Repeat(":p", 0) + strings.Repeat("/:a", 300)[1:], // too many groups
		"https://:h(" + strings.Repeat(`[a-z]{1000}`, 5) + ").example.com/*",
	}
	for i := range costly {
		if i == 6 { // distinct names, or the library refuses it as a duplicate
			var b strings.Builder
			for j := 0; j < 300; j++ {
				fmt.Fprintf(&b, "/:p%d", j)
			}
			costly[i] = b.String()
		}
	}
	s := NewMercureSelectors(MercureSelectorConfig{})
	retained := heapRetained(func() any {
		for _, p := range costly {
			_, err := s.Compile(MercureSelector{MercureURLPattern, p}, testHubURL)
			if err == nil || !(strings.Contains(err.Error(), "too costly") || strings.Contains(err.Error(), "nests")) {
				t.Errorf("%.40s…: %v, want refused as too costly", p, err)
			}
		}
		return s
	})
	if n := s.Compiles(); n != 0 {
		t.Errorf("%d costly patterns were compiled, want none", n)
	}
	if retained > 1<<20 {
		t.Errorf("refusing costly patterns retained %d KiB", retained>>10)
	}
	if n := s.compiled.len(); n != 0 {
		t.Errorf("the cache holds %d refused patterns", n)
	}
}

// What an application subscribes to stays well within the bounds.
func TestMercureOrdinaryPatternsAccepted(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	ordinary := []string{
		"https://example.com/books/:id",
		"https://example.com/books/:id(\\d+)",
		"/.well-known/mercure/subscriptions/:match_type/:match/:subscriber",
		"https://example.com/:kind(books|films)/:id/reviews/*",
		"https://example.com/users/:user/notifications{/:id}?",
		"https://*.example.com/rooms/:room([a-z0-9-]{1,64})",
		"https://example.com/" + strings.Repeat("x", 4000), // long, but only literal text
	}
	var sels []MercureSelector
	for _, p := range ordinary {
		sels = append(sels, MercureSelector{MercureURLPattern, p})
	}
	// 100 matchers of the usual shapes fit in one subscriber's budget.
	for len(sels) < DefaultMercureMaxSelectors {
		sels = append(sels, MercureSelector{MercureURLPattern, fmt.Sprintf("https://example.com/t%d/:a/:b/:c", len(sels))})
	}
	if _, err := s.CompileAll(sels, testHubURL); err != nil {
		t.Fatal(err)
	}
}

// One subscriber's patterns together are bounded too (pattern_budget): 100
// patterns each just under the per-pattern bound would be 100 times it.
func TestMercurePatternBudget(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	var sels []MercureSelector
	for i := 0; i < 20; i++ {
		sels = append(sels, MercureSelector{MercureURLPattern, fmt.Sprintf("/%d/:a([a-z]{1000}[a-z]{1000})", i)})
	}
	if _, err := s.Check(sels[0]); err != nil {
		t.Fatalf("one pattern alone: %v", err)
	}
	err := s.CheckAll(sels)
	if err == nil || !strings.Contains(err.Error(), "pattern_budget") {
		t.Fatalf("20 patterns of cost ~2,000: %v, want refused by the budget", err)
	}
	if _, err := s.CompileAll(sels, testHubURL); err == nil {
		t.Fatal("CompileAll compiled a list over the budget")
	}
	if n := s.Compiles(); n != 0 {
		t.Errorf("%d compilations for a list refused by its budget", n)
	}
	// Both limits are settings.
	big := NewMercureSelectors(MercureSelectorConfig{PatternBudget: 1 << 20})
	if err := big.CheckAll(sels); err != nil {
		t.Errorf("pattern_budget 1Mi: %v", err)
	}
	small := NewMercureSelectors(MercureSelectorConfig{MaxPatternCost: 100})
	if _, err := small.Check(sels[0]); err == nil || !strings.Contains(err.Error(), "max_pattern_cost") {
		t.Errorf("max_pattern_cost 100: %v", err)
	}
}

// The compiled-pattern cache is bounded by estimated bytes, and the
// estimate is not an underestimate of what compiled patterns really hold:
// a flood of distinct patterns, each allowed, pins at most about the
// configured size. Before the fix the cache kept 4,096 entries whatever
// their size.
func TestMercureCompiledCacheBoundedByBytes(t *testing.T) {
	const capacity = 4 << 20
	s := NewMercureSelectors(MercureSelectorConfig{CacheBytes: capacity})
	retained := heapRetained(func() any {
		for i := 0; i < 100; i++ {
			p := fmt.Sprintf("https://example.com/%d/:a([a-z]{1000}[a-z]{1000})", i)
			if _, err := s.Compile(MercureSelector{MercureURLPattern, p}, testHubURL); err != nil {
				t.Fatal(err)
			}
		}
		return s
	})
	if s.Compiles() != 100 {
		t.Fatalf("%d compilations, want 100", s.Compiles())
	}
	if b := s.compiled.size(); b > capacity {
		t.Errorf("cache estimate %d bytes over its capacity %d", b, capacity)
	}
	// Unbounded, 100 such patterns pin ~10MiB.
	if retained > 2*capacity {
		t.Errorf("100 distinct patterns through a %d MiB cache retained %d MiB", capacity>>20, retained>>20)
	}
	if n := s.compiled.len(); n < 2 {
		t.Errorf("the cache keeps %d patterns: the estimate is far too high", n)
	}
}

// The estimate follows the real memory: for each shape, what 10 compiled
// patterns hold is within a factor of the estimate.
func TestMercureCompiledSizeEstimate(t *testing.T) {
	for _, g := range []string{`[a-z]{500}`, `[a-z]{1000}[a-z]{1000}`, `\pL{40}`, `\d{500}`, `(?:[a-z]{10}){50}`} {
		s := NewMercureSelectors(MercureSelectorConfig{CacheBytes: 1 << 30})
		var est int64
		retained := heapRetained(func() any {
			for i := 0; i < 10; i++ {
				sel := MercureSelector{MercureURLPattern, fmt.Sprintf("https://example.com/%d/:a(%s)", i, g)}
				cost, err := s.Check(sel)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Compile(sel, testHubURL); err != nil {
					t.Fatal(err)
				}
				est += compiledSize(sel, testHubURL, cost)
			}
			return s
		})
		if retained > 2*est {
			t.Errorf("%s: 10 patterns hold %d KiB, estimated %d KiB", g, retained>>10, est>>10)
		}
	}
}

// The estimate reads any text without panicking, and compiling what it
// lets through does not panic either: random patterns of URL-pattern and
// regexp punctuation.
func TestMercurePatternCostRandomInput(t *testing.T) {
	const alphabet = `\():*{}?+[]^$.|/ab0-9x{}10,`
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewMercureSelectors(MercureSelectorConfig{CacheBytes: 1})
	passed := 0
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		b.WriteString("/")
		for n := rng.IntN(40); n > 0; n-- {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		sel := MercureSelector{MercureURLPattern, b.String()}
		if _, err := s.Check(sel); err != nil {
			continue
		}
		passed++
		_, _ = s.Compile(sel, testHubURL) // may be malformed: only no panic
	}
	if passed == 0 {
		t.Error("no random pattern passed Check: the test exercises nothing")
	}
}
