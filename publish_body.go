package caddysse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// PublishError is a rejected publish: an HTTP status and the JSON body
// {"error": Msg, "field": Field}.
type PublishError struct {
	Status int
	Field  string
	Msg    string
}

func (e *PublishError) Error() string { return e.Msg }

func badRequest(field, format string, args ...any) *PublishError {
	return &PublishError{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func tooLarge(field, format string, args ...any) *PublishError {
	return &PublishError{Status: http.StatusRequestEntityTooLarge, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// asPublishError maps a validation error to a 400 naming its field, with a
// prefix such as "[2]." for the element of a JSON array.
func asPublishError(err error, prefix string) *PublishError {
	var pe *PublishError
	if errors.As(err, &pe) {
		if prefix != "" {
			cp := *pe
			cp.Field = prefix + pe.Field
			return &cp
		}
		return pe
	}
	var fe *hub.FieldError
	if errors.As(err, &fe) {
		return badRequest(prefix+fe.Field, "%s", fe.Msg)
	}
	return badRequest("", "%s", err.Error())
}

// checkMessage validates m and its size.
func checkMessage(m *hub.Message, maxEvent int64, prefix string) *PublishError {
	if maxEvent > 0 && int64(len(m.Data)) > maxEvent {
		return tooLarge(prefix+"data", "event data is %d bytes; max_event allows %d", len(m.Data), maxEvent)
	}
	if err := hub.ValidateMessage(m); err != nil {
		return asPublishError(err, prefix)
	}
	return nil
}

// jsonMessage is one event of an application/json body.
type jsonMessage struct {
	Topic  *string          `json:"topic"`
	Topics *[]string        `json:"topics"`
	Event  string           `json:"event"`
	Data   json.RawMessage  `json:"data"`
	Retry  *json.RawMessage `json:"retry"`
}

// parseJSONBody reads one event object or an array of them. The whole body
// is validated before anything is returned.
// It reports whether the body was an array, which is answered with an array.
func parseJSONBody(body []byte, maxEvent int64) ([]*hub.Message, bool, *PublishError) {
	if !utf8.Valid(body) {
		return nil, false, badRequest("", "body is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, badRequest("", "body is empty")
	}
	var raw []json.RawMessage
	array := trimmed[0] == '['
	if array {
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, false, badRequest("", "malformed JSON: %v", err)
		}
		if len(raw) == 0 {
			return nil, false, badRequest("", "empty array: no events to publish")
		}
	} else {
		raw = []json.RawMessage{trimmed}
	}
	msgs := make([]*hub.Message, 0, len(raw))
	for i, r := range raw {
		prefix := ""
		if array {
			prefix = "[" + strconv.Itoa(i) + "]."
		}
		m, perr := decodeJSONMessage(r, prefix)
		if perr != nil {
			return nil, false, perr
		}
		if perr := checkMessage(m, maxEvent, prefix); perr != nil {
			return nil, false, perr
		}
		msgs = append(msgs, m)
	}
	return msgs, array, nil
}

func decodeJSONMessage(r json.RawMessage, prefix string) (*hub.Message, *PublishError) {
	var jm jsonMessage
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.DisallowUnknownFields()
	where := strings.TrimSuffix(prefix, ".") // "[2]" names the element itself
	if err := dec.Decode(&jm); err != nil {
		return nil, badRequest(where, "malformed event object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest(where, "malformed JSON: trailing data after the event")
	}
	m := &hub.Message{Name: jm.Event}
	switch {
	case jm.Topic != nil && jm.Topics != nil:
		return nil, badRequest(prefix+"topics", "give either topic or topics, not both")
	case jm.Topic != nil:
		m.Topics = []string{*jm.Topic}
	case jm.Topics != nil:
		if len(*jm.Topics) == 0 {
			return nil, badRequest(prefix+"topics", "topics is empty")
		}
		m.Topics = *jm.Topics
	}
	data := bytes.TrimSpace(jm.Data)
	switch {
	case len(data) == 0 || string(data) == "null":
		return nil, badRequest(prefix+"data", "data is missing or null")
	case data[0] == '"':
		if err := json.Unmarshal(data, &m.Data); err != nil {
			return nil, badRequest(prefix+"data", "malformed data string: %v", err)
		}
	default:
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			return nil, badRequest(prefix+"data", "malformed data: %v", err)
		}
		m.Data = buf.String()
	}
	if jm.Retry != nil {
		ms, err := strconv.ParseInt(string(*jm.Retry), 10, 64)
		if err != nil || ms < 0 || ms > int64(math.MaxInt64/time.Millisecond) {
			return nil, badRequest(prefix+"retry", "retry must be a whole, non-negative number of milliseconds")
		}
		m.Retry = time.Duration(ms) * time.Millisecond
	}
	return m, nil
}

// parseFormBody reads an application/x-www-form-urlencoded event.
func parseFormBody(body []byte, maxEvent int64) ([]*hub.Message, *PublishError) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("", "malformed form: %v", err)
	}
	for k := range vals {
		switch k {
		case "topic", "event", "data", "retry":
		default:
			return nil, badRequest(k, "unknown form field %q; fields are topic, event, data, retry", hub.Truncate(k, 64))
		}
	}
	if len(vals["data"]) > 1 {
		return nil, badRequest("data", "data is given %d times", len(vals["data"]))
	}
	return metaMessage(vals, vals.Get("data"), maxEvent)
}

// parseTextBody reads a text/plain body: the body is the data, the query
// carries topic, event and retry.
func parseTextBody(body []byte, query url.Values, maxEvent int64) ([]*hub.Message, *PublishError) {
	return metaMessage(query, string(body), maxEvent)
}

// metaMessage builds the event of a form or a text/plain body from its
// fields (form) or query (text/plain), which carry event and retry once.
func metaMessage(vals url.Values, data string, maxEvent int64) ([]*hub.Message, *PublishError) {
	for _, k := range []string{"event", "retry"} {
		if len(vals[k]) > 1 {
			return nil, badRequest(k, "%s is given %d times", k, len(vals[k]))
		}
	}
	m := &hub.Message{Topics: vals["topic"], Name: vals.Get("event"), Data: data}
	if r := vals.Get("retry"); r != "" {
		ms, err := strconv.ParseInt(r, 10, 64)
		if err != nil || !isDigits([]byte(r)) || ms > int64(math.MaxInt64/time.Millisecond) {
			return nil, badRequest("retry", "retry must be a whole, non-negative number of milliseconds")
		}
		m.Retry = time.Duration(ms) * time.Millisecond
	}
	if perr := checkMessage(m, maxEvent, ""); perr != nil {
		return nil, perr
	}
	return []*hub.Message{m}, nil
}

// streamParser reads a text/event-stream body by the WHATWG rules and emits
// each event the moment its blank line arrives, so a publisher may hold the
// request open and stream through it. id fields are ignored (the hub assigns
// ids); a retry field travels with the next event; an event left without
// its blank line at the end of the body is discarded, as a browser would.
type streamParser struct {
	topics   []string
	maxEvent int64
	emit     func(*hub.Message) error
	// flush, if set, is called whenever the parser is about to wait for
	// more of the body (and before it returns): the caller can publish the
	// events emitted so far in one batch, and none waits for later bytes.
	flush func() error

	line    []byte // the line being read
	afterCR bool   // the previous byte was CR: a following LF belongs to it
	started bool   // past a leading BOM
	data    []byte
	hasData bool
	name    string
	retry   time.Duration
	count   int // events emitted
}

// maxFieldOverhead is what a line may add to max_event for its field name.
const maxFieldOverhead = 64

// readAll feeds the whole reader through the parser.
func (p *streamParser) readAll(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if perr := p.feed(buf[:n]); perr != nil {
				// What was accepted before the bad event is published.
				if ferr := p.flushEmitted(); ferr != nil {
					return ferr
				}
				return perr
			}
		}
		if ferr := p.flushEmitted(); ferr != nil {
			return ferr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (p *streamParser) flushEmitted() error {
	if p.flush == nil {
		return nil
	}
	return p.flush()
}

func (p *streamParser) feed(b []byte) error {
	if !p.started {
		// A UTF-8 BOM may open the stream; it may also arrive split.
		bom := []byte("\xEF\xBB\xBF")
		n := min(len(bom)-len(p.line), len(b))
		if bytes.Equal(b[:n], bom[len(p.line):len(p.line)+n]) {
			p.line = append(p.line, b[:n]...)
			b = b[n:]
			if len(p.line) < len(bom) {
				return nil
			}
			p.line = p.line[:0]
		} else {
			b = append(append([]byte(nil), p.line...), b...)
			p.line = p.line[:0]
		}
		p.started = true
	}
	for len(b) > 0 {
		if p.afterCR {
			p.afterCR = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			if err := p.grow(b); err != nil {
				return err
			}
			return nil
		}
		if err := p.grow(b[:i]); err != nil {
			return err
		}
		p.afterCR = b[i] == '\r'
		b = b[i+1:]
		if err := p.processLine(p.line); err != nil {
			return err
		}
		p.line = p.line[:0]
	}
	return nil
}

func (p *streamParser) grow(b []byte) error {
	// Subtract rather than add: maxEvent may be as large as int64 allows.
	if int64(len(p.line)+len(b))-maxFieldOverhead > p.maxEvent {
		return tooLarge("data", "a line of the event stream is longer than max_event (%d bytes)", p.maxEvent)
	}
	p.line = append(p.line, b...)
	return nil
}

func (p *streamParser) processLine(line []byte) error {
	if len(line) == 0 {
		return p.dispatch()
	}
	if line[0] == ':' {
		return nil
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		p.name = string(value)
	case "data":
		if int64(len(p.data)+len(value)) > p.maxEvent {
			return tooLarge("data", "event %d of the stream: data is larger than max_event (%d bytes)", p.count+1, p.maxEvent)
		}
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
		p.hasData = true
	case "retry":
		if ms, err := strconv.ParseUint(string(value), 10, 63); err == nil && isDigits(value) && ms <= uint64(math.MaxInt64/time.Millisecond) {
			p.retry = time.Duration(ms) * time.Millisecond
		}
	}
	return nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func (p *streamParser) dispatch() error {
	if !p.hasData {
		p.name = ""
		return nil
	}
	data := p.data[:len(p.data)-1] // the spec drops the last LF
	m := &hub.Message{Topics: p.topics, Name: p.name, Data: string(data), Retry: p.retry}
	p.data, p.hasData, p.name, p.retry = p.data[:0], false, "", 0
	if perr := checkMessage(m, p.maxEvent, ""); perr != nil {
		return perr
	}
	if err := p.emit(m); err != nil {
		return err
	}
	p.count++
	return nil
}
