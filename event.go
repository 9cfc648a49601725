package caddysse

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// maxIDLen bounds what we accept as a resume point; DESIGN.md promises ids of
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

// isIDChar is the id alphabet of DESIGN.md: 0-9 A-Z a-z - . _ :
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
}

// Event is a published message: immutable once built, shared by every ring
// and subscriber queue that holds it. Wire holds the encoded bytes, built
// once, so fan-out to many subscribers copies nothing.
type Event struct {
	ID   ID
	Time time.Time // when it was published, for replay_age
	Wire []byte
}

// Size is what the event costs a ring's replay_size budget.
func (e *Event) Size() int64 { return int64(len(e.Wire)) + int64(len(e.ID.Epoch)) + 64 }

// Limits on what a publisher may send.
const (
	MaxEventNameLen = 128
	MaxTopicNameLen = 256
)

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
			return fmt.Errorf("topic name %q has a character outside A-Z a-z 0-9 . _ ~ : @ / -", truncate(name, 64))
		}
	}
	return nil
}

func isTopicChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		c == '.' || c == '_' || c == '~' || c == ':' || c == '@' || c == '/' || c == '-'
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// encodeEvent renders one event in the text/event-stream format. Data is
// split on LF, CR and CRLF, so a lone CR never reaches the wire inside a line
// (a browser would end the line there and mangle the event). It allocates
// exactly once: the buffer is sized before anything is written.
func encodeEvent(id ID, m *Message) []byte {
	b := make([]byte, 0, idLineLen(id)+bodyLen(m))
	return appendBody(appendIDLine(b, id), m)
}

// encodeBody renders everything of an event but its id line: what the Redis
// engine stores, since Redis assigns the id.
func encodeBody(m *Message) []byte {
	return appendBody(make([]byte, 0, bodyLen(m)), m)
}

// withID prefixes a body from encodeBody with its id line.
func withID(id ID, body []byte) []byte {
	return append(appendIDLine(make([]byte, 0, idLineLen(id)+len(body)), id), body...)
}

func idLineLen(id ID) int { return len("id: -\n") + len(id.Epoch) + 20 }

func appendIDLine(b []byte, id ID) []byte {
	b = append(b, "id: "...)
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

// retryField is a stand-alone "retry:" line, ending a (field-only) event.
func retryField(d time.Duration) []byte {
	b := append([]byte("retry: "), strconv.FormatInt(d.Milliseconds(), 10)...)
	return append(b, "\n\n"...)
}
