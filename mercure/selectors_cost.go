package mercure

import (
	"fmt"
	"math"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// The cost of a selector, estimated from its text before anything is
// compiled. A URL pattern compiles to Go regexps (one per component), and
// its regexp groups, `(...)`, go to Go's regexp as written: `\pL{1000}`
// repeated 90 times is a valid 815-byte group whose program has ~90,000
// instructions, takes half a second to compile and pins megabytes. Go's
// engine is linear-time, so matching is safe; compiling is what an
// anonymous client could make the hub pay for. The estimate is the number
// of regexp instructions the groups expand to (repeats multiplied out), plus
// a fixed charge per named group and wildcard, which each add a small
// regexp of their own. Literal text is not charged: it is bounded by the
// matcher length and compiles to one instruction per byte.
//
// The estimate refuses a pattern too costly to compile (max_pattern_cost),
// a request whose patterns together cost too much (pattern_budget), and
// sizes the compiled-pattern cache in bytes.

// Defaults of the cost bounds.
const (
	// DefaultMercureMaxPatternCost bounds one pattern: the regexp
	// instructions its groups expand to, plus mercurePatternGroupCost per
	// group. A pattern with 30 plain named groups costs 480; `(\d+)` 20;
	// `([a-z]{1000}[a-z]{1000})` about 2,000 (1MiB of programs, 1ms to
	// compile).
	DefaultMercureMaxPatternCost = 4096
	// DefaultMercurePatternBudget bounds the patterns of one subscriber
	// (one request's matchers, and apart from them its token's): 100
	// ordinary patterns fit many times over.
	DefaultMercurePatternBudget = 16384
	// mercurePatternGroupCost is charged per named group, wildcard and
	// regexp group: each becomes a regexp of its own, a capture and the
	// library's bookkeeping.
	mercurePatternGroupCost = 16
	// mercureMaxGroupNesting bounds how deeply parentheses nest inside one
	// regexp group: legitimate groups nest two or three deep.
	mercureMaxGroupNesting = 8
	// mercureInstBytes is what one compiled regexp instruction costs in
	// memory, as measured through the URL pattern library (about 120 bytes
	// for `[a-z]{250}`); the cache's size estimate uses it.
	mercureInstBytes = 128
)

// selectorCost estimates what compiling sel costs, or explains why it is
// refused. Exact matchers and `*` cost nothing: they compile to a string.
func selectorCost(sel MercureSelector) (cost int, reason string) {
	if sel.Value == "*" {
		return 0, ""
	}
	switch sel.Type {
	case MercureURLPattern:
		return urlPatternCost(sel.Value)
	case MercureTopicSelector:
		// A URI template's regexp has one small group per variable.
		return (strings.Count(sel.Value, "{") + strings.Count(sel.Value, ",")) * mercurePatternGroupCost, ""
	}
	return 0, ""
}

// urlPatternCost walks a URL pattern as the URL Pattern tokenizer does,
// enough to find its groups: `\` escapes one character, `:name` is a named
// group, `*` a wildcard, `(...)` a regexp group whose own `\` escapes and
// nested parentheses are followed to its end. A malformed pattern (an
// unclosed group) is left to the library, which refuses it cheaply.
func urlPatternCost(p string) (int, string) {
	cost := 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			i++
		case c == ':':
			if r, _ := utf8.DecodeRuneInString(p[i+1:]); r == '_' || r == '$' || unicode.IsLetter(r) {
				cost = satAdd(cost, mercurePatternGroupCost)
			}
		case c == '*':
			cost = satAdd(cost, mercurePatternGroupCost)
		case c == '(':
			end, depth := regexpGroupEnd(p, i)
			if end < 0 {
				return cost, ""
			}
			if depth > mercureMaxGroupNesting {
				return 0, fmt.Sprintf("a regexp group nests parentheses %d deep; at most %d are allowed", depth, mercureMaxGroupNesting)
			}
			re, err := syntax.Parse(p[i+1:end], syntax.Perl)
			if err != nil {
				// The library would refuse it too; say why here, where
				// the group is known.
				return 0, fmt.Sprintf("not a valid URL pattern: a regexp group is not a valid regular expression (%s)", hub.Truncate(syntaxErrorCode(err), 80))
			}
			cost = satAdd(cost, satAdd(mercurePatternGroupCost, regexpCost(re, 0)))
			i = end
		}
	}
	return cost, ""
}

// regexpGroupEnd returns the index of the `)` closing the regexp group
// opened at p[open], and how deeply parentheses nest inside it; -1 when it
// is not closed.
func regexpGroupEnd(p string, open int) (end, maxDepth int) {
	depth := 0
	for i := open + 1; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '(':
			depth++
			maxDepth = max(maxDepth, depth)
		case ')':
			if depth == 0 {
				return i, maxDepth
			}
			depth--
		}
	}
	return -1, maxDepth
}

func syntaxErrorCode(err error) string {
	if se, ok := err.(*syntax.Error); ok {
		return string(se.Code)
	}
	return err.Error()
}

// mercureMaxQuantifierNesting bounds quantifiers inside quantifiers:
// `(?:a{10}){10}` is fine, deeper nesting multiplies program size for no
// use a topic pattern has.
const mercureMaxQuantifierNesting = 3

// regexpCost is the number of instructions re expands to once repeats are
// multiplied out (what Go's compiler emits), saturating instead of
// overflowing. A character class is charged for its ranges, which every
// copy carries. Quantifiers nested deeper than
// mercureMaxQuantifierNesting cost the maximum.
func regexpCost(re *syntax.Regexp, quantDepth int) int {
	sum := func() int {
		n := 1
		for _, s := range re.Sub {
			n = satAdd(n, regexpCost(s, quantDepth))
		}
		return n
	}
	switch re.Op {
	case syntax.OpLiteral:
		return max(len(re.Rune), 1)
	case syntax.OpCharClass:
		// Every copy carries its ranges: `\pL` is ~1,300 runes, and
		// `\pL{100}` pins 800KiB where `[a-z]{100}` pins 14KiB.
		return 1 + len(re.Rune)/16
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		if quantDepth >= mercureMaxQuantifierNesting {
			return math.MaxInt32
		}
		sub := regexpCost(re.Sub[0], quantDepth+1)
		if re.Op != syntax.OpRepeat {
			return satAdd(sub, 1)
		}
		n := re.Max
		if n < 0 {
			n = re.Min + 1
		}
		return satAdd(satMul(sub, max(n, 1)), 1)
	}
	return sum()
}

func satAdd(a, b int) int {
	if a > math.MaxInt32-b {
		return math.MaxInt32
	}
	return a + b
}

func satMul(a, b int) int {
	if b != 0 && a > math.MaxInt32/b {
		return math.MaxInt32
	}
	return a * b
}

// compiledSize estimates the bytes a compiled selector holds: the
// matcher, its strings, and for patterns the regexp programs. The
// compiled-selector cache is bounded by the sum of these.
func compiledSize(sel MercureSelector, baseURL string, cost int) int64 {
	n := int64(256 + 2*len(sel.Value) + len(baseURL))
	if sel.Type == MercureURLPattern && sel.Value != "*" {
		// A URL pattern is eight component regexps and their strings,
		// even when it has no group.
		n += 4096 + 2*int64(len(sel.Value))*mercureInstBytes/8
	}
	return n + int64(cost)*mercureInstBytes
}
