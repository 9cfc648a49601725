package hub

import (
	"fmt"
	"sort"
	"strings"
)

// TopicDecl is one declared topic: a literal name ("news"), a pattern with
// "*" segments ("chat/*"), or a name with placeholders resolved per
// subscriber ("user/{http.auth.user.id}"), together with its ring settings.
type TopicDecl struct {
	Name string
	Ring RingConfig
	// MaxTopics caps the concrete topics a pattern or placeholder
	// declaration holds in memory at once; ignored for literal names.
	MaxTopics int
}

// DefaultMaxTopics is the default cap of concrete topics per pattern.
const DefaultMaxTopics = 10000

// IsLiteral reports whether the declaration names exactly one topic.
func (d TopicDecl) IsLiteral() bool {
	return !strings.Contains(d.Name, "{") && !hasWildcard(d.Name)
}

// HasPlaceholder reports whether the name is resolved per request.
func (d TopicDecl) HasPlaceholder() bool { return strings.Contains(d.Name, "{") }

func hasWildcard(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if seg == "*" {
			return true
		}
	}
	return false
}

// ValidateDeclName checks a declared name: a valid topic name in which a
// whole segment may be "*" and segments may hold {placeholders}.
func ValidateDeclName(name string) error {
	if name == "" {
		return fmt.Errorf("topic name is empty")
	}
	if len(name) > MaxTopicNameLen {
		return fmt.Errorf("topic name %q is longer than %d bytes", Truncate(name, 64), MaxTopicNameLen)
	}
	if InternalTopic(name) {
		return ErrInternalTopic("topic", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "*" {
			continue
		}
		if strings.Contains(seg, "*") {
			return fmt.Errorf("topic %q: '*' must be a whole segment between slashes", name)
		}
		rest := seg
		for {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				break
			}
			j := strings.IndexByte(rest[i:], '}')
			if j < 0 {
				return fmt.Errorf("topic %q: unclosed placeholder", name)
			}
			rest = rest[:i] + "x" + rest[i+j+1:]
		}
		if rest == "" {
			continue // empty segments are judged with the whole name below
		}
		for k := 0; k < len(rest); k++ {
			if !isTopicChar(rest[k]) {
				return fmt.Errorf("topic %q has a character outside A-Z a-z 0-9 . _ ~ : @ / - (and '*' segments, {placeholders})", name)
			}
		}
	}
	return nil
}

// PatternSegments turns a declared name into segments where "" matches any
// one non-empty segment: '*' segments, and segments holding a placeholder
// (which, for a publisher, stand for whatever a subscriber's request
// resolves them to).
func PatternSegments(name string) []string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		if s == "*" || strings.Contains(s, "{") {
			segs[i] = "*"
		}
	}
	return segs
}

// MatchSegments reports whether name matches a declared pattern. No
// pattern matches an internal name: a leading '*' or placeholder segment
// would otherwise take an internal name, and every name a client supplies (a
// ?topic=, a resolved placeholder, a grant) is judged by a pattern unless
// the route declares it literally, which no route can do for a '~' name.
func MatchSegments(pattern []string, name string) bool {
	if InternalTopic(name) {
		return false
	}
	for i, p := range pattern {
		var seg string
		j := strings.IndexByte(name, '/')
		if j < 0 {
			if i != len(pattern)-1 {
				return false
			}
			seg, name = name, ""
		} else {
			if i == len(pattern)-1 {
				return false
			}
			seg, name = name[:j], name[j+1:]
		}
		if p == "*" {
			if seg == "" {
				return false
			}
		} else if p != seg {
			return false
		}
	}
	return true
}

// TopicTable resolves concrete topic names against a hub's declarations.
// Literal declarations win over patterns; among patterns the first declared
// wins. It is built while a configuration is provisioned and read-only once
// it serves.
type TopicTable struct {
	literal  map[string]tableEntry
	patterns []tableEntry
}

type tableEntry struct {
	decl  TopicDecl
	segs  []string
	place string
}

// NewTopicTable returns an empty table.
func NewTopicTable() *TopicTable {
	return &TopicTable{literal: make(map[string]tableEntry)}
}

// Empty reports whether nothing is declared.
func (t *TopicTable) Empty() bool { return len(t.literal) == 0 && len(t.patterns) == 0 }

// Add declares d, found at place (a description for error messages). The
// same name declared again must have the same settings.
func (t *TopicTable) Add(d TopicDecl, place string) error {
	if d.IsLiteral() {
		if prev, ok := t.literal[d.Name]; ok {
			return conflict(prev, d, place)
		}
		t.literal[d.Name] = tableEntry{decl: d, place: place}
		return nil
	}
	for _, prev := range t.patterns {
		if prev.decl.Name == d.Name {
			return conflict(prev, d, place)
		}
	}
	t.patterns = append(t.patterns, tableEntry{decl: d, segs: PatternSegments(d.Name), place: place})
	return nil
}

func conflict(prev tableEntry, d TopicDecl, place string) error {
	if prev.decl == d {
		return nil
	}
	return fmt.Errorf("topic %q is declared twice with different settings: %s at %s, %s at %s",
		d.Name, describeDecl(prev.decl), prev.place, describeDecl(d), place)
}

func describeDecl(d TopicDecl) string {
	s := fmt.Sprintf("replay %d, replay_size %d", d.Ring.Replay, d.Ring.ReplaySize)
	if d.Ring.ReplayAge > 0 {
		s += ", replay_age " + d.Ring.ReplayAge.String()
	}
	if d.Ring.OnConnect > 0 {
		s += fmt.Sprintf(", replay_on_connect %d", d.Ring.OnConnect)
	}
	if !d.IsLiteral() {
		s += fmt.Sprintf(", max_topics %d", d.MaxTopics)
	}
	return "(" + s + ")"
}

// Lookup resolves a concrete topic name.
func (t *TopicTable) Lookup(name string) (TopicRef, bool) {
	if e, ok := t.literal[name]; ok {
		return TopicRef{Name: name, Ring: e.decl.Ring}, true
	}
	for _, e := range t.patterns {
		if MatchSegments(e.segs, name) {
			return TopicRef{Name: name, Ring: e.decl.Ring, Group: e.decl.Name, GroupMax: e.decl.MaxTopics}, true
		}
	}
	return TopicRef{}, false
}

// Declared lists the declared names, sorted: literal names and patterns
// as written.
func (t *TopicTable) Declared() []string {
	out := make([]string, 0, len(t.literal)+len(t.patterns))
	for name := range t.literal {
		out = append(out, name)
	}
	for _, e := range t.patterns {
		out = append(out, e.decl.Name)
	}
	sort.Strings(out)
	return out
}

// Decl returns the declaration a concrete topic name matches.
func (t *TopicTable) Decl(name string) (TopicDecl, bool) {
	if e, ok := t.literal[name]; ok {
		return e.decl, true
	}
	for _, e := range t.patterns {
		if MatchSegments(e.segs, name) {
			return e.decl, true
		}
	}
	return TopicDecl{}, false
}

// Ring reports the settings a topic currently has, for Hub.Prune.
func (t *TopicTable) Ring(name string) (RingConfig, bool) {
	ref, ok := t.Lookup(name)
	return ref.Ring, ok
}

// InternalTopic reports a name reserved for a hub's internal topics.
// A route keeps what no plain stream may read there (for example every
// update of a protocol, private ones included): an sse route serving it would serve them
// all, a publisher writing to it would forge updates, and presence events
// there would reach no one. So no
// declaration, publish or presence option may name one, no pattern matches
// one (matchSegments), and no name a client supplies is taken as one
// (clientTopicName).
func InternalTopic(name string) bool { return strings.HasPrefix(name, "~") }

// ErrInternalTopic refuses a reserved name, saying where it was given.
func ErrInternalTopic(what, name string) error {
	return fmt.Errorf("%s %q: names starting with '~' are reserved for the hub's internal topics", what, Truncate(name, 64))
}

// ClientTopicName checks a name a subscriber supplied, directly (?topic=)
// or through the app (a grant): a valid topic name that is not internal.
// The error does not say that an internal topic exists.
func ClientTopicName(name string) error {
	if err := ValidTopicName(name); err != nil {
		return err
	}
	if InternalTopic(name) {
		return fmt.Errorf("topic %q is not served here", Truncate(name, 64))
	}
	return nil
}
