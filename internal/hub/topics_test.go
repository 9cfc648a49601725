package hub

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateDeclName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"literal", "news", true},
		{"every allowed char", "AZaz09._~:@-/x", true},
		{"~ inside a name", "a~b/~c", true},
		{"reserved for sse_mercure", "~mercure", false},
		{"reserved prefix", "~anything/*", false},
		{"256 bytes", strings.Repeat("n", MaxTopicNameLen), true},
		{"star segment", "chat/*", true},
		{"only a star", "*", true},
		{"leading star", "*/room", true},
		{"several stars", "*/x/*", true},
		{"placeholder", "user/{http.auth.user.id}", true},
		{"placeholder with text", "user/id-{http.auth.user.id}", true},
		{"two placeholders in a segment", "u/{a}-{b}", true},
		{"placeholder and star", "{a}/*", true},
		{"placeholder content is Caddy's business", "u/{http.request.header.X-User Id}", true},
		{"empty", "", false},
		{"257 bytes", strings.Repeat("n", MaxTopicNameLen+1), false},
		{"star inside a segment", "chat/a*", false},
		{"star prefix", "chat/*a", false},
		{"double star", "chat/**", false},
		{"star in a literal", "a*b", false},
		{"unclosed placeholder", "user/{id", false},
		{"unclosed second placeholder", "u/{a}{b", false},
		{"closing brace alone", "user/id}", false},
		{"space", "a b", false},
		{"non-ASCII", "café", false},
		{"question mark", "a?", false},
		{"NUL", "a\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateDeclName(tc.in)
			if tc.ok && err != nil {
				t.Fatalf("ValidateDeclName(%q) = %v, want nil", tc.in, err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("ValidateDeclName(%q) = nil, want an error", tc.in)
			}
		})
	}
}

func TestTopicDeclKinds(t *testing.T) {
	tests := []struct {
		name        string
		literal     bool
		placeholder bool
	}{
		{"news", true, false},
		{"a/b/c", true, false},
		{"a*b", true, false}, // not a wildcard segment (and not a valid declaration)
		{"chat/*", false, false},
		{"*", false, false},
		{"user/{id}", false, true},
		{"{a}", false, true},
	}
	for _, tc := range tests {
		d := TopicDecl{Name: tc.name}
		if d.IsLiteral() != tc.literal || d.HasPlaceholder() != tc.placeholder {
			t.Errorf("%q: IsLiteral %v, HasPlaceholder %v; want %v, %v",
				tc.name, d.IsLiteral(), d.HasPlaceholder(), tc.literal, tc.placeholder)
		}
	}
}

func TestPatternSegments(t *testing.T) {
	wild := PatternSegments("*")[0] // whatever stands for "any one segment"
	tests := []struct {
		in   string
		want []string // "*" marks a wildcard segment
	}{
		{"news", []string{"news"}},
		{"chat/*", []string{"chat", "*"}},
		{"*/room/*", []string{"*", "room", "*"}},
		{"user/{http.auth.user.id}", []string{"user", "*"}},
		{"user/id-{x}/inbox", []string{"user", "*", "inbox"}},
	}
	for _, tc := range tests {
		got := PatternSegments(tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("patternSegments(%q) = %q, want %d segments", tc.in, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if w == "*" && got[i] != wild || w != "*" && got[i] != w {
				t.Errorf("patternSegments(%q)[%d] = %q, want %q", tc.in, i, got[i], w)
			}
		}
	}
}

func TestMatchSegments(t *testing.T) {
	tests := []struct {
		pattern string
		name    string
		want    bool
	}{
		{"chat/*", "chat/1", true},
		{"chat/*", "chat/room.with-dots_and~", true},
		{"chat/*", "chat", false},
		{"chat/*", "chat/", false},
		{"chat/*", "chat/1/2", false},
		{"chat/*", "chats/1", false},
		{"chat/*", "cha/1", false},
		{"chat/*", "x/chat/1", false},
		{"chat/*", "/chat/1", false},
		{"*", "a", true},
		{"*", "", false},
		{"*", "a/b", false},
		{"*", "/", false},
		{"*/room", "a/room", true},
		{"*/room", "/room", false},
		{"*/room", "a/rooms", false},
		{"*/room", "a/b/room", false},
		{"a/*/c", "a/b/c", true},
		{"a/*/c", "a//c", false},
		{"a/*/c", "a/b/c/", false},
		{"a/*/c", "a/b/d", false},
		{"*/*", "a/b", true},
		{"*/*", "a", false},
		{"*/*", "a/b/c", false},
		{"user/{http.auth.user.id}", "user/42", true},
		{"user/{http.auth.user.id}", "user", false},
		{"user/{http.auth.user.id}", "user/", false},
		{"user/{http.auth.user.id}", "user/42/x", false},
		{"{a}/{b}", "x/y", true},
		{"news", "news", true},
		{"news", "news2", false},
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		// An empty literal segment is not a wildcard: "a//*" names topics
		// whose second segment is empty, which "a/x/y" does not have.
		{"a//*", "a//y", true},
		{"a//*", "a/x/y", false},
	}
	for _, tc := range tests {
		if got := MatchSegments(PatternSegments(tc.pattern), tc.name); got != tc.want {
			t.Errorf("pattern %q, name %q: match = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestTopicTableLookup(t *testing.T) {
	ringA := RingConfig{Replay: 1, ReplaySize: 100}
	ringB := RingConfig{Replay: 2, ReplaySize: 200}
	ringC := RingConfig{Replay: 3, ReplaySize: 300, ReplayAge: time.Minute}
	ringD := RingConfig{Replay: 4, ReplaySize: 400}
	decls := []TopicDecl{
		{Name: "*/room", Ring: ringA, MaxTopics: 10},   // first pattern
		{Name: "chat/*", Ring: ringB, MaxTopics: 20},   // second pattern
		{Name: "chat/room", Ring: ringC},               // a literal declared after the patterns
		{Name: "user/{id}", Ring: ringD, MaxTopics: 5}, // a placeholder
		{Name: "news", Ring: ringD},
	}
	tbl := NewTopicTable()
	for i, d := range decls {
		if err := tbl.Add(d, "decl "+string(rune('0'+i))); err != nil {
			t.Fatalf("Add(%+v) = %v", d, err)
		}
	}
	tests := []struct {
		name string
		ok   bool
		want TopicRef
	}{
		{"news", true, TopicRef{Name: "news", Ring: ringD}},
		{"chat/room", true, TopicRef{Name: "chat/room", Ring: ringC}},                                  // literal wins over both patterns
		{"lobby/room", true, TopicRef{Name: "lobby/room", Ring: ringA, Group: "*/room", GroupMax: 10}}, // first pattern
		{"chat/x", true, TopicRef{Name: "chat/x", Ring: ringB, Group: "chat/*", GroupMax: 20}},         // second pattern
		{"user/42", true, TopicRef{Name: "user/42", Ring: ringD, Group: "user/{id}", GroupMax: 5}},     // placeholder matches one segment
		{"user/room", true, TopicRef{Name: "user/room", Ring: ringA, Group: "*/room", GroupMax: 10}},   // first pattern wins over the placeholder
		{"user", false, TopicRef{}},
		{"user/42/x", false, TopicRef{}},
		{"chat", false, TopicRef{}},
		{"room", false, TopicRef{}},
		{"newsroom", false, TopicRef{}},
		{"", false, TopicRef{}},
	}
	for _, tc := range tests {
		got, ok := tbl.Lookup(tc.name)
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
		ring, ok := tbl.Ring(tc.name)
		if ok != tc.ok || ring != tc.want.Ring {
			t.Errorf("Ring(%q) = %+v, %v; want %+v, %v", tc.name, ring, ok, tc.want.Ring, tc.ok)
		}
	}
}

func TestTopicTableLiteralWinsWhateverTheOrder(t *testing.T) {
	lit := RingConfig{Replay: 1, ReplaySize: 1}
	pat := RingConfig{Replay: 2, ReplaySize: 2}
	for _, literalFirst := range []bool{true, false} {
		tbl := NewTopicTable()
		adds := []TopicDecl{{Name: "chat/vip", Ring: lit}, {Name: "chat/*", Ring: pat, MaxTopics: 3}}
		if !literalFirst {
			adds[0], adds[1] = adds[1], adds[0]
		}
		for _, d := range adds {
			if err := tbl.Add(d, "here"); err != nil {
				t.Fatal(err)
			}
		}
		if ref, _ := tbl.Lookup("chat/vip"); ref.Ring != lit || ref.Group != "" {
			t.Errorf("literalFirst=%v: Lookup(chat/vip) = %+v, want the literal", literalFirst, ref)
		}
		if ref, _ := tbl.Lookup("chat/other"); ref.Ring != pat || ref.Group != "chat/*" || ref.GroupMax != 3 {
			t.Errorf("literalFirst=%v: Lookup(chat/other) = %+v, want the pattern", literalFirst, ref)
		}
	}
}

func TestTopicTableAddConflicts(t *testing.T) {
	def := DefaultRingConfig()
	other := RingConfig{Replay: 5, ReplaySize: DefaultReplaySize}
	aged := RingConfig{Replay: DefaultReplay, ReplaySize: DefaultReplaySize, ReplayAge: time.Hour}
	tests := []struct {
		name    string
		first   TopicDecl
		second  TopicDecl
		wantErr bool
		inErr   []string
	}{
		{"identical literal", TopicDecl{Name: "news", Ring: def}, TopicDecl{Name: "news", Ring: def}, false, nil},
		{"identical pattern", TopicDecl{Name: "chat/*", Ring: def, MaxTopics: 7}, TopicDecl{Name: "chat/*", Ring: def, MaxTopics: 7}, false, nil},
		{"different names", TopicDecl{Name: "a", Ring: def}, TopicDecl{Name: "b", Ring: other}, false, nil},
		{"overlapping patterns are not a conflict", TopicDecl{Name: "chat/*", Ring: def}, TopicDecl{Name: "*/room", Ring: other}, false, nil},
		{"literal replay differs", TopicDecl{Name: "news", Ring: def}, TopicDecl{Name: "news", Ring: other}, true,
			[]string{`"news"`, "Caddyfile:3", "Caddyfile:9", "replay 1000", "replay 5"}},
		{"literal age differs", TopicDecl{Name: "news", Ring: def}, TopicDecl{Name: "news", Ring: aged}, true,
			[]string{`"news"`, "Caddyfile:3", "Caddyfile:9", "replay_age 1h"}},
		{"pattern ring differs", TopicDecl{Name: "chat/*", Ring: def, MaxTopics: 7}, TopicDecl{Name: "chat/*", Ring: other, MaxTopics: 7}, true,
			[]string{`"chat/*"`, "Caddyfile:3", "Caddyfile:9"}},
		{"pattern max_topics differs", TopicDecl{Name: "chat/*", Ring: def, MaxTopics: 7}, TopicDecl{Name: "chat/*", Ring: def, MaxTopics: 8}, true,
			[]string{`"chat/*"`, "Caddyfile:3", "Caddyfile:9", "max_topics 7", "max_topics 8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := NewTopicTable()
			if err := tbl.Add(tc.first, "Caddyfile:3"); err != nil {
				t.Fatalf("first Add = %v", err)
			}
			err := tbl.Add(tc.second, "Caddyfile:9")
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("second Add = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("second Add = nil, want a conflict error")
			}
			for _, s := range tc.inErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// The first declaration stays in force.
			if ref, ok := tbl.Lookup(strings.ReplaceAll(tc.first.Name, "*", "x")); !ok || ref.Ring != tc.first.Ring {
				t.Errorf("after the conflict Lookup = %+v, %v; want the first declaration's ring", ref, ok)
			}
		})
	}
}

// No pattern, however wide, resolves a name to an internal topic, even
// when the table declares that internal topic literally (as sse_mercure
// does): a client-supplied name reaches it only by a literal declaration,
// which no route may make (issue 16, hole 1).
func TestInternalTopicsMatchNoPattern(t *testing.T) {
	tbl := NewTopicTable()
	for _, d := range []TopicDecl{{Name: "*"}, {Name: "*/*"}, {Name: "{query.t}"}} {
		if err := tbl.Add(d, "test"); err != nil {
			t.Fatal(err)
		}
	}
	// Declared the way a route's internal topic is (sse_mercure's), bypassing
	// ValidateDeclName.
	tbl.literal["~internal"] = tableEntry{decl: TopicDecl{Name: "~internal"}}
	for _, name := range []string{"~internal-subscriptions", "~x", "~internal/x"} {
		if ref, ok := tbl.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, want no match", name, ref)
		}
		if _, ok := tbl.Decl(name); ok {
			t.Errorf("Decl(%q) matched a pattern", name)
		}
		if ClientTopicName(name) == nil {
			t.Errorf("clientTopicName(%q) accepted an internal name", name)
		}
	}
	if ref, ok := tbl.Lookup("~internal"); !ok || ref.Group != "" {
		t.Errorf("the literal declaration of %s must still resolve, alone: %+v %v", "~internal", ref, ok)
	}
	if _, ok := tbl.Lookup("x/~y"); !ok {
		t.Error("a '~' inside a later segment is an ordinary name")
	}
}
