package hub

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ID identifies one published event. Ids are assigned by the hub; on the
// wire they read "<epoch>-<seq>". The epoch names one life of one hub (a
// process start of the memory hub), so an id from a previous process or from
// another hub is recognised as unknown instead of being compared by number.
type ID struct {
	Epoch string
	Seq   uint64
}

// maxIDLen bounds what we accept as a resume point; docs/subscribing.md ("Wire format") promises ids of
// at most 64 bytes.
const maxIDLen = 64

func (id ID) String() string {
	return id.Epoch + "-" + strconv.FormatUint(id.Seq, 10)
}

// ParseID reads an id as written by ID.String. It reports false for anything
// malformed; callers treat that as an unknown resume point, never as an error.
func ParseID(s string) (ID, bool) {
	if len(s) == 0 || len(s) > maxIDLen {
		return ID{}, false
	}
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || !validEpoch(s[:i]) {
		return ID{}, false
	}
	seq, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil || (len(s[i+1:]) > 1 && s[i+1] == '0') {
		return ID{}, false
	}
	return ID{Epoch: s[:i], Seq: seq}, true
}

func validEpoch(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isIDChar(s[i]) {
			return false
		}
	}
	return true
}

// isIDChar is the id alphabet of docs/subscribing.md's "Wire format": 0-9 A-Z a-z - . _ :
func isIDChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		c == '-' || c == '.' || c == '_' || c == ':'
}

var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewEpoch returns a fresh random epoch: 10 characters, 48 bits of entropy
// (6 random bytes in base32).
func NewEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return epochEncoding.EncodeToString(b[:])[:10]
}

// Message is what a publisher asks to send, before the hub gives it an id.
type Message struct {
	Topics []string
	Name   string // event type; "" and "message" are the default
	Data   string
	Retry  time.Duration // 0: no retry field
	// Meta is opaque to the hub: carried with the event through both
	// engines (rings, Redis streams, the Redis bus) and never written on
	// the wire. A route keeps what its per-subscriber filter needs here
	// (a protocol's own topics, whether an update is private).
	Meta string
	// PublicID, when set, is the event's id on the wire instead of the
	// hub id (a publisher-chosen id). The hub id is
	// still assigned and orders everything; a PublicID is a resume point.
	// Several retained events may bear one (a protocol may allow reuse): it
	// resumes after the earliest of them.
	PublicID string
	// HashID writes the hub id on the wire as "#<id>" (a relative-IRI
	// form of a hub-generated id). Resuming accepts both forms.
	HashID bool
}

// Event is a published message: immutable once built, shared by every ring
// and subscriber queue that holds it. Wire holds the encoded bytes, built
// once, so fan-out to many subscribers copies nothing.
type Event struct {
	ID   ID
	Time time.Time // when it was published, for replay_age
	Wire []byte
	// Meta, PublicID and HashID are the Message's (see there).
	Meta     string
	PublicID string
	HashID   bool

	// decoded caches one decoded form of Meta per event (Decoded), so a
	// filter run for every subscriber decodes it once. An atomic.Value
	// (holding a *decodedMeta) rather than an atomic.Pointer: events are
	// plain values that tests copy, and atomic.Pointer forbids copies.
	decoded atomic.Value
}

type decodedMeta struct{ v any }

// Size is what the event costs a ring's replay_size budget.
func (e *Event) Size() int64 {
	return int64(len(e.Wire)) + int64(len(e.ID.Epoch)) + int64(len(e.Meta)) + int64(len(e.PublicID)) + 64
}

// WireID is the event's id as its subscribers see it: the PublicID, else
// the hub id, "#"-prefixed with HashID.
func (e *Event) WireID() string {
	switch {
	case e.PublicID != "":
		return e.PublicID
	case e.HashID:
		return "#" + e.ID.String()
	}
	return e.ID.String()
}

// Decoded returns decode(e.Meta), computed once per event and kept: a
// filter that runs for 10,000 subscribers of one event decodes its
// metadata once. Concurrent callers are safe; if two race on the first
// call, both may decode but every caller gets the one value kept. One
// consumer per hub is expected: the cache holds one decoded form, whatever
// decode function asked first.
func (e *Event) Decoded(decode func(meta string) any) any {
	if d, ok := e.decoded.Load().(*decodedMeta); ok {
		return d.v
	}
	d := &decodedMeta{v: decode(e.Meta)}
	if e.decoded.CompareAndSwap(nil, d) {
		return d.v
	}
	return e.decoded.Load().(*decodedMeta).v
}

// Limits on what a publisher may send.
const (
	MaxEventNameLen = 128
	MaxTopicNameLen = 256
)

// ErrReservedID is returned when a publish carries a PublicID in the
// hub's own id space ("<epoch>-<seq>" of its current epoch): a resume
// point naming it would be ambiguous. Nothing was published.
var ErrReservedID = errors.New("the id reads as an id this hub generates")

// ValidPublicID checks a publisher-chosen id: UTF-8 without CR, LF or NUL
// (they would break the id line apart), not starting with '#' (reserved
// for hub-generated ids, HashID). Its length is the caller's to bound
// (a route's request body bound): the rings count it in replay_size.
func ValidPublicID(id string) error {
	switch {
	case id == "":
		return errors.New("id is empty")
	case id[0] == '#':
		return errors.New("id must not start with '#': it is reserved for ids the hub generates")
	case strings.ContainsAny(id, "\r\n\x00"):
		return errors.New("id must not contain CR, LF or NUL")
	case !utf8.ValidString(id):
		return errors.New("id is not valid UTF-8")
	}
	return nil
}

// ValidatePublicIDs checks the PublicIDs of a batch before an engine
// publishes it. A batch may name an id twice, as it may name one a
// retained event bears.
func ValidatePublicIDs(pubs []Publication) error {
	for _, p := range pubs {
		if id := p.Message.PublicID; id != "" {
			if err := ValidPublicID(id); err != nil {
				return &FieldError{Field: "id", Msg: err.Error()}
			}
		}
	}
	return nil
}

// inHubIDSpace reports whether a PublicID reads as a hub id of epoch: it
// would make a resume point ambiguous, so it is refused.
// The test is the prefix "<epoch>-" and digits, as the Redis publish
// script makes it, so both engines refuse the same ids.
func inHubIDSpace(publicID, epoch string) bool {
	rest, ok := strings.CutPrefix(publicID, epoch+"-")
	if !ok || epoch == "" || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return false
		}
	}
	return true
}

// Validation errors carry the field they are about, for the publish API's
// {"error","field"} answer.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ValidateMessage checks what the wire format needs; whether the topics
// exist is the caller's business.
func ValidateMessage(m *Message) error {
	if len(m.Topics) == 0 {
		return fieldErr("topic", "no topic given")
	}
	for _, t := range m.Topics {
		if err := ValidTopicName(t); err != nil {
			return &FieldError{Field: "topic", Msg: err.Error()}
		}
	}
	if err := ValidEventName(m.Name); err != nil {
		return &FieldError{Field: "event", Msg: err.Error()}
	}
	if m.Data == "" {
		return fieldErr("data", "data is missing or empty; browsers never dispatch an event without data")
	}
	if !utf8.ValidString(m.Data) {
		return fieldErr("data", "data is not valid UTF-8")
	}
	if m.Retry < 0 {
		return fieldErr("retry", "retry must not be negative")
	}
	if m.PublicID != "" {
		if err := ValidPublicID(m.PublicID); err != nil {
			return &FieldError{Field: "id", Msg: err.Error()}
		}
	}
	return nil
}

// ValidEventName accepts "" (the default type) or up to 128 bytes of UTF-8
// without CR, LF or NUL, which would break the field apart on the wire.
func ValidEventName(name string) error {
	if len(name) > MaxEventNameLen {
		return fmt.Errorf("event name is %d bytes; at most %d are allowed", len(name), MaxEventNameLen)
	}
	if strings.ContainsAny(name, "\r\n\x00") {
		return errors.New("event name must not contain CR, LF or NUL")
	}
	if !utf8.ValidString(name) {
		return errors.New("event name is not valid UTF-8")
	}
	return nil
}

// ValidTopicName accepts 1-256 characters from A-Z a-z 0-9 . _ ~ : @ / -.
func ValidTopicName(name string) error {
	if name == "" {
		return errors.New("topic name is empty")
	}
	if len(name) > MaxTopicNameLen {
		return fmt.Errorf("topic name is %d bytes; at most %d are allowed", len(name), MaxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !isTopicChar(name[i]) {
			return fmt.Errorf("topic name %q has a character outside A-Z a-z 0-9 . _ ~ : @ / -", Truncate(name, 64))
		}
	}
	return nil
}

func isTopicChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		c == '.' || c == '_' || c == '~' || c == ':' || c == '@' || c == '/' || c == '-'
}

func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// EncodeEvent renders one event in the text/event-stream format. Data is
// split on LF, CR and CRLF, so a lone CR never reaches the wire inside a line
// (a browser would end the line there and mangle the event). It allocates
// exactly once: the buffer is sized before anything is written.
func EncodeEvent(id ID, m *Message) []byte {
	b := make([]byte, 0, idLineLen(id, m.PublicID)+bodyLen(m))
	return appendBody(appendIDLine(b, id, m.PublicID, m.HashID), m)
}

// EncodeBody renders everything of an event but its id line: what the Redis
// engine stores, since Redis assigns the id.
func EncodeBody(m *Message) []byte {
	return appendBody(make([]byte, 0, bodyLen(m)), m)
}

// WithID prefixes a body from encodeBody with its id line: publicID when
// set, else the hub id ("#"-prefixed with hash).
func WithID(id ID, publicID string, hash bool, body []byte) []byte {
	b := make([]byte, 0, idLineLen(id, publicID)+len(body))
	return append(appendIDLine(b, id, publicID, hash), body...)
}

// idLineLen is an upper bound of what appendIDLine writes.
func idLineLen(id ID, publicID string) int {
	return len("id: #-\n") + len(id.Epoch) + 20 + len(publicID)
}

func appendIDLine(b []byte, id ID, publicID string, hash bool) []byte {
	b = append(b, "id: "...)
	if publicID != "" {
		b = append(b, publicID...)
		return append(b, '\n')
	}
	if hash {
		b = append(b, '#')
	}
	b = append(b, id.Epoch...)
	b = append(b, '-')
	b = strconv.AppendUint(b, id.Seq, 10)
	return append(b, '\n')
}

// bodyLen is an upper bound of what appendBody writes.
func bodyLen(m *Message) int {
	breaks := strings.Count(m.Data, "\n") + strings.Count(m.Data, "\r")
	n := (breaks+1)*len("data: \n") + len(m.Data) + 1
	if m.Name != "" && m.Name != "message" {
		n += len("event: \n") + len(m.Name)
	}
	if m.Retry > 0 {
		n += len("retry: \n") + 20
	}
	return n
}

func appendBody(b []byte, m *Message) []byte {
	if m.Name != "" && m.Name != "message" {
		b = append(b, "event: "...)
		b = append(b, m.Name...)
		b = append(b, '\n')
	}
	if m.Retry > 0 {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, m.Retry.Milliseconds(), 10)
		b = append(b, '\n')
	}
	b = appendData(b, m.Data)
	return append(b, '\n')
}

// appendData writes data as "data: " lines. Each line keeps its leading
// spaces: the one space after the colon is the one a parser strips. The next
// CR and LF are searched with IndexByte (vectorised) and remembered, so no
// byte is scanned twice.
func appendData(b []byte, data string) []byte {
	nextLF, nextCR := indexFrom(data, '\n', 0), indexFrom(data, '\r', 0)
	start := 0
	for nextLF >= 0 || nextCR >= 0 {
		i, skip := nextLF, 1
		if nextCR >= 0 && (nextLF < 0 || nextCR < nextLF) {
			i = nextCR
			if nextLF == i+1 {
				skip = 2 // CRLF is one line break
			}
		}
		b = append(b, "data: "...)
		b = append(b, data[start:i]...)
		b = append(b, '\n')
		start = i + skip
		if nextLF >= 0 && nextLF < start {
			nextLF = indexFrom(data, '\n', start)
		}
		if nextCR >= 0 && nextCR < start {
			nextCR = indexFrom(data, '\r', start)
		}
	}
	b = append(b, "data: "...)
	b = append(b, data[start:]...)
	return append(b, '\n')
}

// indexFrom is strings.IndexByte starting at from, as an absolute index.
func indexFrom(s string, c byte, from int) int {
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return -1
}

// RetryField is a stand-alone "retry:" line, ending a (field-only) event.
func RetryField(d time.Duration) []byte {
	b := append([]byte("retry: "), strconv.FormatInt(d.Milliseconds(), 10)...)
	return append(b, "\n\n"...)
}
