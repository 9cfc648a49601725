//go:build linux

package main

import (
	"bytes"
	"net/url"
	"strconv"
	"time"
)

// conn is one accepted connection: a subscriber once it asked for
// /events, otherwise a client sending requests (publishers).
type conn struct {
	fd               int
	closed           bool
	in               []byte // request bytes read but not parsed yet (a request split across reads)
	out              []byte // bytes the socket did not take yet
	armed            bool   // EPOLLOUT is in the interest set (out is not empty)
	closeWhenFlushed bool   // an error was answered, or the client asked to close

	// A subscriber: its topic and its place in the topic's list.
	sub         *topic
	topicName   string
	slot        int
	behind      bool // out passed the high-water mark; publishers wait
	behindSince time.Time

	// A publisher: it has sent a POST; paused while subscribers are behind.
	publisher bool
	paused    bool
	req       *request // the request whose body is being read
}

// request is a POST /publish whose body is being read.
type request struct {
	topic     string
	stream    bool // a text/event-stream body: events published as parsed
	keepAlive bool
	body      bodyReader
	data      []byte // a plain body so far
	events    eventParser

	published       int64
	firstID, lastID uint64
}

// Bounds on what a client may send.
const (
	maxHeader = 16 << 10  // request line and headers
	maxBody   = 1 << 20   // one plain event (caddy-sse's default max_body)
	maxEvent  = 256 << 10 // one event of a held stream (caddy-sse's default max_event)
)

var (
	headerEnd  = []byte("\r\n\r\n")
	sseHeaders = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")
	// sseHeadersChunked: with -chunked.
	sseHeadersChunked = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
	statusTexts       = map[int]string{200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
		413: "Content Too Large", 431: "Request Header Fields Too Large", 501: "Not Implemented"}
)

// received parses what a non-subscriber sent, keeping an incomplete
// request for the next read. The common case, a whole request in one read,
// copies nothing.
func (l *loop) received(c *conn, data []byte) {
	if c.closeWhenFlushed {
		return // answered and closing: the rest is not read
	}
	buffered := len(c.in) > 0
	if buffered {
		c.in = append(c.in, data...)
		data = c.in
	}
	rest := data[l.serve(c, data):]
	switch {
	case c.closed || c.sub != nil || c.closeWhenFlushed:
		c.in = nil
	case buffered:
		c.in = c.in[:copy(c.in, rest)]
	case len(rest) > 0:
		c.in = append(c.in[:0], rest...)
	}
}

// serve handles the requests in b and returns how many bytes it used.
func (l *loop) serve(c *conn, b []byte) int {
	used := 0
	for !c.closed && c.sub == nil && !c.closeWhenFlushed {
		if c.req == nil {
			end := bytes.Index(b, headerEnd)
			if end < 0 {
				if len(b) > maxHeader {
					l.fail(c, 431, "request headers too large")
				}
				break
			}
			l.begin(c, b[:end+len(headerEnd)])
			b, used = b[end+len(headerEnd):], used+end+len(headerEnd)
			continue
		}
		if len(b) == 0 {
			break
		}
		r := c.req
		n, done, err := r.body.read(b, func(p []byte) *httpError { return l.bodyBytes(r, p) })
		b, used = b[n:], used+n
		if err != nil {
			l.fail(c, err.status, err.msg)
			break
		}
		if done {
			l.finish(c)
		}
	}
	return used
}

// begin routes a request by its head: a subscription is answered at once,
// a publish waits for its body.
func (l *loop) begin(c *conn, head []byte) {
	line, headers, _ := bytes.Cut(head, []byte("\r\n"))
	method, rest, _ := bytes.Cut(line, []byte(" "))
	target, version, _ := bytes.Cut(rest, []byte(" "))
	path, query, _ := bytes.Cut(target, []byte("?"))
	if !bytes.HasPrefix(version, []byte("HTTP/1.")) {
		l.fail(c, 400, "malformed request line")
		return
	}
	r := &request{keepAlive: string(version) == "HTTP/1.1", body: bodyReader{}}
	var haveLength bool
	for len(headers) > 0 {
		var h []byte
		h, headers, _ = bytes.Cut(headers, []byte("\r\n"))
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || haveLength {
				l.fail(c, 400, "bad Content-Length")
				return
			}
			r.body.remain, haveLength = n, true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				l.fail(c, 501, "only chunked transfer coding is understood")
				return
			}
			r.body.chunked = true
		case bytes.EqualFold(name, []byte("Content-Type")):
			mt, _, _ := bytes.Cut(value, []byte(";"))
			r.stream = bytes.EqualFold(bytes.TrimSpace(mt), []byte("text/event-stream"))
		case bytes.EqualFold(name, []byte("Connection")):
			r.keepAlive = !bytes.EqualFold(value, []byte("close"))
		}
	}
	if haveLength && r.body.chunked {
		l.fail(c, 400, "both Content-Length and chunked")
		return
	}
	topic, ok := topicOf(query, c.topicName)
	switch {
	case string(path) != "/events" && string(path) != "/publish":
		l.fail(c, 404, "the paths are /events and /publish")
	case string(path) == "/events" && string(method) != "GET",
		string(path) == "/publish" && string(method) != "POST":
		l.fail(c, 405, "GET /events, POST /publish")
	case !ok:
		l.fail(c, 400, "the query must name a topic: ?topic=name")
	case string(path) == "/events":
		l.subscribe(c, topic)
		if l.srv.cfg.chunked {
			l.send(c, sseHeadersChunked)
		} else {
			l.send(c, sseHeaders)
		}
	default:
		c.publisher, c.topicName = true, topic // the name is kept for the next request's topicOf
		r.topic = topic
		c.req = r
		if !r.body.chunked && r.body.remain == 0 {
			l.finish(c)
		}
	}
}

// topicOf finds topic= in a raw query. last is the connection's previous
// topic: a publisher names the same one each time, and reusing the string
// saves an allocation per request.
func topicOf(query []byte, last string) (string, bool) {
	for len(query) > 0 {
		var kv []byte
		kv, query, _ = bytes.Cut(query, []byte("&"))
		k, v, _ := bytes.Cut(kv, []byte("="))
		if string(k) != "topic" {
			continue
		}
		if bytes.ContainsAny(v, "%+") {
			s, err := url.QueryUnescape(string(v))
			return s, err == nil && s != ""
		}
		if string(v) == last {
			return last, last != ""
		}
		return string(v), len(v) > 0
	}
	return "", false
}

// bodyBytes takes body payload as it arrives: a held stream's events are
// published as soon as each is complete; a plain body is gathered.
func (l *loop) bodyBytes(r *request, p []byte) *httpError {
	if r.stream {
		return r.events.feed(p, func(event, data []byte) {
			id := l.srv.publish(l, r.topic, event, data)
			if r.published == 0 {
				r.firstID = id
			}
			r.lastID = id
			r.published++
		})
	}
	if len(r.data)+len(p) > maxBody {
		return &httpError{413, "body larger than 1 MiB"}
	}
	r.data = append(r.data, p...)
	return nil
}

// finish answers a publish whose body has been read: the event's id, or
// for a held stream the summary caddy-sse answers
// ({"published":n,"first_id":...,"last_id":...}).
func (l *loop) finish(c *conn) {
	r := c.req
	c.req = nil
	var body []byte
	if r.stream {
		body = append(body, `{"published":`...)
		body = strconv.AppendInt(body, r.published, 10)
		if r.published > 0 {
			body = append(body, `,"first_id":"`...)
			body = strconv.AppendUint(body, r.firstID, 10)
			body = append(body, `","last_id":"`...)
			body = strconv.AppendUint(body, r.lastID, 10)
			body = append(body, '"')
		}
		body = append(body, "}\n"...)
	} else {
		id := l.srv.publish(l, r.topic, nil, r.data)
		body = append(body, `{"id":"`...)
		body = strconv.AppendUint(body, id, 10)
		body = append(body, "\"}\n"...)
	}
	c.closeWhenFlushed = !r.keepAlive
	l.respond(c, 200, "application/json", body, r.keepAlive)
}

type httpError struct {
	status int
	msg    string
}

// fail answers an error and closes the connection once the answer is
// written: what follows a bad request cannot be trusted to be a request.
func (l *loop) fail(c *conn, status int, msg string) {
	c.req = nil
	c.closeWhenFlushed = true
	l.respond(c, status, "text/plain", []byte(msg+"\n"), false)
}

func (l *loop) respond(c *conn, status int, contentType string, body []byte, keepAlive bool) {
	b := append(l.head[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(append(append(b, ' '), statusTexts[status]...), "\r\nContent-Type: "...)
	b = append(append(b, contentType...), "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if !keepAlive {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(append(b, "\r\n\r\n"...), body...)
	l.head = b[:0] // send keeps a copy of what the socket does not take
	l.send(c, b)
}
