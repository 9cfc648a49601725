package mercure

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestMercureMetaMatchesJSON: the hand-written metadata encoder writes the
// bytes json.Marshal writes, and decodeMercureMeta reads any metadata as
// json.Unmarshal does (plain topics, escapes, non-ASCII, other shapes and
// malformed text alike).
func TestMercureMetaMatchesJSON(t *testing.T) {
	topics := []string{
		"https://example.com/books/1", "urn:uuid:1", "/relative", "a",
		`quote"d`, `back\slash`, "<html>&amp;", "café", "line\u2028sep", "tab\there",
		"x]}", `],"p":true}`, ",", `","`, " ", "~mercure",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var metas []mercureMeta
	metas = append(metas, mercureMeta{Topics: nil}, mercureMeta{Topics: []string{}})
	for range 2000 {
		m := mercureMeta{Private: rng.IntN(2) == 0}
		for range 1 + rng.IntN(4) {
			m.Topics = append(m.Topics, topics[rng.IntN(len(topics))])
		}
		metas = append(metas, m)
	}
	for _, m := range metas {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := encodeMercureMeta(m)
		if got != string(want) {
			t.Fatalf("encodeMercureMeta(%#v) = %s, json.Marshal gives %s", m, got, want)
		}
		checkMetaDecode(t, got)
	}
	for _, meta := range []string{
		"", "{}", "null", `{"t":[]}`, `{"t":null}`, `{"t":["a"]}`, `{"t":["a"],"p":true}`,
		`{"t":["a"],"p":false}`, `{"p":true,"t":["a"]}`, `{ "t":["a"]}`, `{"t":["a",]}`,
		`{"t":["a""b"]}`, `{"t":["a"`, `{"t":["a]}`, `{"t":["a],"p":true}`, `{"t":[""]}`,
		`{"t":["a","b"],"p":true}`, `{"t":["a"],"x":1}`, `{"t":[1]}`, `{"t":["a"]}x`,
		`{"t":["\u0041"]}`, `{"t":["é"]}`, `{"t":["a"]}` + "\n", `{"T":["a"]}`,
	} {
		checkMetaDecode(t, meta)
	}
}

// checkMetaDecode compares decodeMercureMeta with json.Unmarshal on meta.
func checkMetaDecode(t *testing.T, meta string) {
	t.Helper()
	var want *mercureMeta
	var m mercureMeta
	if meta != "" && json.Unmarshal([]byte(meta), &m) == nil && len(m.Topics) > 0 {
		want = &m
	}
	got, _ := decodeMercureMeta(meta).(*mercureMeta)
	if got != nil {
		got = &mercureMeta{Topics: got.Topics, Private: got.Private} // without its memo
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeMercureMeta(%q) = %#v, json.Unmarshal gives %#v", meta, got, want)
	}
	if plain, ok := decodeMercureMetaPlain(meta); ok && (want == nil || !reflect.DeepEqual(&plain, want)) {
		t.Fatalf("decodeMercureMetaPlain(%q) = %#v, json.Unmarshal gives %#v", meta, plain, want)
	}
}

// TestMercureMetaMemo: an event remembers the decisions of the deciders
// that fill its slots, and every decider, remembered or not, gets its own
// answer.
func TestMercureMetaMemo(t *testing.T) {
	s := NewMercureSelectors(MercureSelectorConfig{})
	const topic = "https://example.com/books/1"
	yes := mustCompileAll(t, s, selExact(topic))
	no := mustCompileAll(t, s, selExact("https://example.com/books/2"))
	all := mustCompileAll(t, s, MercureSelector{MercureExact, "*"})
	var deciders []*MercureDecider
	var want []bool
	for i := range 12 { // more deciders than slots
		routed := yes
		if i%3 == 0 {
			routed = no
		}
		var private []*MercureMatcher
		if i%2 == 0 {
			private = all
		}
		extra := mustCompileAll(t, s, selExact(fmt.Sprintf("https://example.com/other/%d", i)))
		deciders = append(deciders, s.Decider(append(routed, extra...), private))
		want = append(want, i%3 != 0 && i%2 == 0) // the update is private
	}
	meta, _ := decodeMercureMeta(encodeMercureMeta(mercureMeta{Topics: []string{topic}, Private: true})).(*mercureMeta)
	for round := range 3 {
		for i, d := range deciders {
			if got := meta.allows(d); got != want[i] {
				t.Fatalf("round %d, decider %d: allows = %v, want %v", round, i, got, want[i])
			}
		}
	}
	remembered := 0
	for i := range meta.memo {
		if p := meta.memo[i].Load(); p != nil {
			remembered++
			if p.allow != p.d.Allows(meta.Topics, meta.Private) {
				t.Fatalf("slot %d remembers a wrong decision", i)
			}
		}
	}
	if remembered == 0 {
		t.Fatal("the event remembered no decision")
	}
}
