package integration

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// llmAnswer is the answer the "model" streams, token by token. Tokens carry
// what real ones do: leading spaces, newlines, CRLF, markup, emoji, and
// text that looks like SSE fields.
var llmAnswer = []string{
	"Sure", "!", " Here", " is", " a", " list", ":\n\n", "1", ".", " **bold**",
	"\n", "2", ".", " `code`", "\r\n", "data: not a field", " ", "  indented",
	" é", "🙂", " {\"json\":", " true}", "\n\n", "That", "'s", " all", ".",
}

// llmEvent is how the recipe's app writes one token into its held publish:
// the token JSON-encoded on one data line, so spaces, newlines and CRs
// arrive exactly.
func llmEvent(token string) string {
	b, _ := json.Marshal(token)
	return "event: token\ndata: " + string(b) + "\n\n"
}

// llmDone ends an answer: the browser closes its EventSource on it.
const llmDone = "event: done\ndata: {}\n\n"

// readTokens reads s until want tokens have arrived (or, with want < 0, until
// the done event), returning the tokens and the id of the last event read.
func readTokens(t *testing.T, s *subscriber, want int) (tokens []string, lastID string, done bool) {
	t.Helper()
	for want < 0 || len(tokens) < want {
		ev := s.next()
		lastID = ev.LastEventID
		switch ev.Type {
		case "done":
			return tokens, lastID, true
		case "token":
			var tok string
			if err := json.Unmarshal([]byte(ev.Data), &tok); err != nil {
				t.Fatalf("token %q: %v", ev.Data, err)
			}
			tokens = append(tokens, tok)
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	return tokens, lastID, false
}

// The recipe (docs/) "LLM token streams": the app streams tokens into
// chat/<id> through one held text/event-stream publish; the browser's
// connection drops mid-answer, tokens keep coming, and the browser resumes
// by Last-Event-ID with no token lost or repeated.
func TestRecipeLLMTokenStreamResumes(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /chat {
		topic chat/* {
			replay     1000
			replay_age 10m
		}
	}
	sse_publish /publish
}
`)
	const topic = "chat/c42"
	url := c.base + "/chat?topic=" + topic
	browser := subscribe(t, client, url).ready()
	// A second tab stays connected: it sees every token, and tells the
	// test when tokens published during the drop have reached the hub.
	observer := subscribe(t, client, url).ready()

	pr, pw := io.Pipe()
	answer := heldStream(t, c, topic, pr)
	write := func(s string) {
		if _, err := io.WriteString(pw, s); err != nil {
			t.Fatalf("the held publish stopped: %v", err)
		}
	}

	cut, during := 9, 17 // tokens read before the drop; tokens published while away
	for _, tok := range llmAnswer[:cut] {
		write(llmEvent(tok))
	}
	got, lastID, _ := readTokens(t, browser, cut)
	browser.close() // the connection drops mid-answer

	for _, tok := range llmAnswer[cut:during] {
		write(llmEvent(tok))
	}
	if seen, _, _ := readTokens(t, observer, during); strings.Join(seen, "") != strings.Join(llmAnswer[:during], "") {
		t.Fatalf("the observer saw %q", seen)
	}

	// The browser comes back with the id of the last token it read.
	browser = subscribe(t, client, url, "Last-Event-ID: "+lastID).ready()
	for _, tok := range llmAnswer[during:] {
		write(llmEvent(tok))
	}
	write(llmDone)
	pw.Close()

	rest, _, done := readTokens(t, browser, -1)
	if !done {
		t.Fatal("no done event")
	}
	got = append(got, rest...)
	if want := strings.Join(llmAnswer, ""); strings.Join(got, "") != want || len(got) != len(llmAnswer) {
		t.Fatalf("the browser assembled %d tokens:\n%q\nwant %d:\n%q", len(got), strings.Join(got, ""), len(llmAnswer), want)
	}
	var sum streamSummary
	status, body, _ := strings.Cut(<-answer, " ")
	if status != "200" || json.Unmarshal([]byte(body), &sum) != nil || sum.Published != uint64(len(llmAnswer)+1) {
		t.Fatalf("the held publish answered %s %s, want 200 with %d published", status, body, len(llmAnswer)+1)
	}
}
