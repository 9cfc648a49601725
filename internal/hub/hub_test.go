package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	sse "github.com/tmaxmax/go-sse"
)

// hubTestRing is large enough that nothing is evicted unless a test wants it.
var hubTestRing = RingConfig{Replay: 1 << 20, ReplaySize: 1 << 40}

func hubTestRefs(names ...string) []TopicRef {
	refs := make([]TopicRef, len(names))
	for i, n := range names {
		refs[i] = TopicRef{Name: n, Ring: hubTestRing}
	}
	return refs
}

func hubTestPublish(t *testing.T, h *Hub, data string, refs ...TopicRef) PublishResult {
	t.Helper()
	res, err := h.publish([]Publication{{Message: &Message{Data: data}, Topics: refs}})
	if err != nil {
		t.Fatalf("Publish(%q) = %v", data, err)
	}
	if len(res) != 1 {
		t.Fatalf("Publish returned %d results for one publication", len(res))
	}
	return res[0]
}

func hubTestSubscribe(t *testing.T, h *Hub, refs []TopicRef, resume string, queue int) (*Subscription, Replay) {
	t.Helper()
	s, rp, err := h.Subscribe(refs, resume, queue)
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v", resume, err)
	}
	t.Cleanup(s.Close)
	return s, rp
}

// hubTestDrain takes what is queued for s without waiting: everything a
// returned Publish queued is already there.
func hubTestDrain(s *Subscription) []*Event {
	select {
	case <-s.Ready():
	default:
	}
	return s.Take(nil)
}

func hubTestSeq(t *testing.T, id string) uint64 {
	t.Helper()
	p, ok := ParseID(id)
	if !ok {
		t.Fatalf("hub assigned an id ParseID rejects: %q", id)
	}
	return p.Seq
}

func hubTestSeqs(evs []*Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.ID.Seq)
	}
	return out
}

func hubTestIsClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// hubTestResume is the resume point "I have everything up to seq".
func hubTestResume(h *Hub, seq uint64) string { return ID{Epoch: h.Epoch(), Seq: seq}.String() }

func TestHubPublishSubscribe(t *testing.T) {
	h := NewHub()
	sub, rp := hubTestSubscribe(t, h, hubTestRefs("a"), "", 8)
	if rp.Reset != nil || len(rp.Events) != 0 {
		t.Fatalf("a fresh subscribe got a replay: %+v", rp)
	}
	msg := &Message{Name: "update", Data: "hello\nworld"}
	res, err := h.publish([]Publication{{Message: msg, Topics: hubTestRefs("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Delivered != 1 {
		t.Fatalf("delivered = %d, want 1", res[0].Delivered)
	}
	evs := hubTestDrain(sub)
	if len(evs) != 1 {
		t.Fatalf("subscriber got %d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.ID.String() != res[0].ID || ev.ID.Epoch != h.Epoch() {
		t.Fatalf("event id %v, result id %q, hub epoch %q", ev.ID, res[0].ID, h.Epoch())
	}
	if want := EncodeEvent(ev.ID, msg); !bytes.Equal(ev.Wire, want) {
		t.Fatalf("event wire %q, want %q", ev.Wire, want)
	}

	if r := hubTestPublish(t, h, "elsewhere", hubTestRefs("b")...); r.Delivered != 0 {
		t.Fatalf("publish to an unsubscribed topic delivered %d", r.Delivered)
	}
	if evs := hubTestDrain(sub); len(evs) != 0 {
		t.Fatalf("subscriber of a got an event of b: %q", evs[0].Wire)
	}
	if st := h.Stats(); st.Topics != 2 || st.Subscribers != 1 || st.LastSeq != 2 {
		t.Fatalf("Stats = %+v, want 2 topics, 1 subscriber, last seq 2", st)
	}
}

func TestHubIDsIncrease(t *testing.T) {
	h := NewHub()
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, hubTestPublish(t, h, "x", hubTestRefs("a")...).ID)
	}
	batch := make([]Publication, 5)
	for i := range batch {
		batch[i] = Publication{Message: &Message{Data: "y"}, Topics: hubTestRefs("a", "b")}
	}
	res, err := h.publish(batch)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		ids = append(ids, r.ID)
	}
	ids = append(ids, hubTestPublish(t, h, "z", hubTestRefs("c")...).ID)
	for i, id := range ids {
		p, ok := ParseID(id)
		if !ok {
			t.Fatalf("id %q does not parse", id)
		}
		if p.Epoch != h.Epoch() {
			t.Fatalf("id %q is not of the hub's epoch %q", id, h.Epoch())
		}
		if p.Seq != uint64(i+1) {
			t.Fatalf("id %d is %q, want seq %d", i, id, i+1)
		}
		if len(id) > maxIDLen {
			t.Fatalf("id %q is longer than %d bytes", id, maxIDLen)
		}
		for j := 0; j < len(id); j++ {
			if !isIDChar(id[j]) {
				t.Fatalf("id %q has a byte outside the id alphabet", id)
			}
		}
	}
	if other := NewHub(); other.Epoch() == h.Epoch() {
		t.Fatalf("two hubs share the epoch %q", h.Epoch())
	}
}

func TestHubDelivered(t *testing.T) {
	h := NewHub()
	s1, _ := hubTestSubscribe(t, h, hubTestRefs("a", "b"), "", 64)
	s2, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 64)
	s3, _ := hubTestSubscribe(t, h, hubTestRefs("c"), "", 64)
	// The same topic twice in one subscription must not double anything.
	s4, _ := hubTestSubscribe(t, h, hubTestRefs("c", "c"), "", 64)

	tests := []struct {
		topics []string
		want   int
	}{
		{[]string{"a"}, 2},
		{[]string{"a", "b"}, 2}, // s1 counts once
		{[]string{"b"}, 1},
		{[]string{"c"}, 2},
		{[]string{"a", "b", "c"}, 4},
		{[]string{"b", "a"}, 2},
		{[]string{"d"}, 0},
	}
	var batch []Publication
	for _, tc := range tests {
		batch = append(batch, Publication{Message: &Message{Data: strings.Join(tc.topics, ",")}, Topics: hubTestRefs(tc.topics...)})
	}
	// Once one by one, once as a batch: the counts must agree.
	var got []PublishResult
	for _, p := range batch {
		res, err := h.publish([]Publication{p})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res[0])
	}
	res, err := h.publish(batch)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, res...)
	for i, r := range got {
		tc := tests[i%len(tests)]
		if r.Delivered != tc.want {
			t.Errorf("publish %d to %v: delivered %d, want %d", i, tc.topics, r.Delivered, tc.want)
		}
	}

	wantFor := func(topics ...string) []uint64 {
		var seqs []uint64
		for i := range got {
			for _, tp := range tests[i%len(tests)].topics {
				if slices.Contains(topics, tp) {
					seqs = append(seqs, uint64(i+1))
					break
				}
			}
		}
		return seqs
	}
	for _, c := range []struct {
		name   string
		s      *Subscription
		topics []string
	}{
		{"s1", s1, []string{"a", "b"}},
		{"s2", s2, []string{"a"}},
		{"s3", s3, []string{"c"}},
		{"s4", s4, []string{"c"}},
	} {
		if seqs := hubTestSeqs(hubTestDrain(c.s)); !reflect.DeepEqual(seqs, wantFor(c.topics...)) {
			t.Errorf("%s received %v, want %v (each once, in order)", c.name, seqs, wantFor(c.topics...))
		}
	}
}

func TestHubQueueLenAtLeastOne(t *testing.T) {
	h := NewHub()
	for _, q := range []int{0, -5} {
		s, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", q)
		if s.max != 1 {
			t.Fatalf("queue %d gave a bound of %d, want 1", q, s.max)
		}
	}
	if r := hubTestPublish(t, h, "x", hubTestRefs("a")...); r.Delivered != 2 {
		t.Fatalf("delivered = %d, want 2", r.Delivered)
	}
}

func TestHubResume(t *testing.T) {
	h := NewHub()
	pubs := [][]string{
		1: {"a"},
		2: {"b"},
		3: {"a", "b"},
		4: {"c"},
		5: {"a"},
		6: {"b", "c"},
	}
	for seq := 1; seq < len(pubs); seq++ {
		if r := hubTestPublish(t, h, fmt.Sprint(seq), hubTestRefs(pubs[seq]...)...); hubTestSeq(t, r.ID) != uint64(seq) {
			t.Fatalf("publication %d got id %s", seq, r.ID)
		}
	}
	tests := []struct {
		name   string
		topics []string
		after  uint64
		want   []uint64
	}{
		{"two topics after 1", []string{"a", "b"}, 1, []uint64{2, 3, 5, 6}},
		{"two topics from the start", []string{"a", "b"}, 0, []uint64{1, 2, 3, 5, 6}},
		{"order of topics does not matter", []string{"b", "a"}, 0, []uint64{1, 2, 3, 5, 6}},
		{"one topic", []string{"c"}, 1, []uint64{4, 6}},
		{"all topics after 3", []string{"a", "b", "c"}, 3, []uint64{4, 5, 6}},
		{"all topics after 5", []string{"c", "b", "a"}, 5, []uint64{6}},
		{"at the newest", []string{"a", "b", "c"}, 6, []uint64{}},
		{"a new topic", []string{"d"}, 2, []uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, rp := hubTestSubscribe(t, h, hubTestRefs(tc.topics...), hubTestResume(h, tc.after), 16)
			if rp.Reset != nil {
				t.Fatalf("valid resume point got a reset: %+v", rp.Reset)
			}
			if got := hubTestSeqs(rp.Events); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("replayed %v, want %v", got, tc.want)
			}
			if live := hubTestDrain(s); len(live) != 0 {
				t.Fatalf("replayed events were also queued: %v", hubTestSeqs(live))
			}
		})
	}

	// After the replay, live events follow with no duplicate.
	s, rp := hubTestSubscribe(t, h, hubTestRefs("a", "b"), hubTestResume(h, 4), 16)
	hubTestPublish(t, h, "7", hubTestRefs("a", "b")...)
	hubTestPublish(t, h, "8", hubTestRefs("c")...)
	hubTestPublish(t, h, "9", hubTestRefs("b")...)
	all := append(hubTestSeqs(rp.Events), hubTestSeqs(hubTestDrain(s))...)
	if want := []uint64{5, 6, 7, 9}; !reflect.DeepEqual(all, want) {
		t.Fatalf("replay then live = %v, want %v", all, want)
	}

	// No resume point: nothing replayed.
	_, rp = hubTestSubscribe(t, h, hubTestRefs("a", "b", "c"), "", 16)
	if rp.Reset != nil || len(rp.Events) != 0 {
		t.Fatalf("subscribe without a resume point replayed %v (reset %+v)", hubTestSeqs(rp.Events), rp.Reset)
	}
}

// hubTestResetData decodes a reset's wire with a spec-conformant parser.
func hubTestResetData(t *testing.T, r *Reset) (id string, reason string, lastEventID string) {
	t.Helper()
	var evs []sse.Event
	for ev, err := range sse.Read(bytes.NewReader(r.Wire()), nil) {
		if err != nil {
			t.Fatalf("reset wire %q: %v", r.Wire(), err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != 1 || evs[0].Type != "reset" {
		t.Fatalf("reset wire %q decodes to %+v, want one event of type reset", r.Wire(), evs)
	}
	var data struct {
		Reason      string `json:"reason"`
		LastEventID string `json:"last_event_id"`
	}
	dec := json.NewDecoder(strings.NewReader(evs[0].Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&data); err != nil {
		t.Fatalf("reset data %q: %v", evs[0].Data, err)
	}
	return evs[0].LastEventID, data.Reason, data.LastEventID
}

func TestHubResetUnknown(t *testing.T) {
	other := NewHub()
	tests := []struct {
		name   string
		resume func(h *Hub) string
	}{
		{"garbage", func(*Hub) string { return "garbage" }},
		{"only a number", func(*Hub) string { return "3" }},
		{"leading zero", func(h *Hub) string { return h.Epoch() + "-03" }},
		{"no epoch", func(*Hub) string { return "-3" }},
		{"other epoch", func(*Hub) string { return other.Epoch() + "-3" }},
		{"other epoch, seq 0", func(*Hub) string { return other.Epoch() + "-0" }},
		{"epoch prefix", func(h *Hub) string { return h.Epoch()[:5] + "-3" }},
		{"future seq", func(h *Hub) string { return hubTestResume(h, 6) }},
		{"far future seq", func(h *Hub) string { return hubTestResume(h, 1<<63) }},
		{"too long", func(*Hub) string { return strings.Repeat("x", 70) + "-1" }},
		{"JSON in it", func(*Hub) string { return `"},"reason":"evicted` }},
		{"control bytes", func(*Hub) string { return "a\x00b\r\nc" }},
		{"invalid UTF-8", func(*Hub) string { return "\xff\xfe-1" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub()
			for i := 0; i < 5; i++ {
				hubTestPublish(t, h, "x", hubTestRefs("a")...)
			}
			resume := tc.resume(h)
			s, rp := hubTestSubscribe(t, h, hubTestRefs("a"), resume, 16)
			if rp.Reset == nil {
				t.Fatalf("resume %q: no reset", resume)
			}
			if rp.Reset.Reason != "unknown" {
				t.Fatalf("reason %q, want unknown", rp.Reset.Reason)
			}
			if len(rp.Events) != 0 {
				t.Fatalf("an unknown resume point replayed %v", hubTestSeqs(rp.Events))
			}
			if want := truncateBytes(resume, maxEchoedIDLen); rp.Reset.LastEventID != want {
				t.Fatalf("LastEventID %q, want %q", rp.Reset.LastEventID, want)
			}
			if rp.Reset.ID != (ID{Epoch: h.Epoch(), Seq: 5}) {
				t.Fatalf("Reset.ID = %v, want the newest id %s-5", rp.Reset.ID, h.Epoch())
			}
			id, reason, echoed := hubTestResetData(t, rp.Reset)
			if id != rp.Reset.ID.String() || reason != "unknown" {
				t.Fatalf("reset wire: id %q reason %q", id, reason)
			}
			if utf8.ValidString(rp.Reset.LastEventID) && echoed != rp.Reset.LastEventID {
				t.Fatalf("reset wire echoes %q, want %q", echoed, rp.Reset.LastEventID)
			}
			// Resuming from the reset's id does not reset again.
			_, rp2 := hubTestSubscribe(t, h, hubTestRefs("a"), rp.Reset.ID.String(), 16)
			if rp2.Reset != nil || len(rp2.Events) != 0 {
				t.Fatalf("resume from Reset.ID %s: reset %+v, events %v", rp.Reset.ID, rp2.Reset, hubTestSeqs(rp2.Events))
			}
			// And the subscriber is live.
			r := hubTestPublish(t, h, "live", hubTestRefs("a")...)
			if got := hubTestSeqs(hubTestDrain(s)); !reflect.DeepEqual(got, []uint64{hubTestSeq(t, r.ID)}) {
				t.Fatalf("after the reset the subscriber got %v", got)
			}
		})
	}
}

func TestHubResetUnknownOnEmptyHub(t *testing.T) {
	h := NewHub()
	_, rp := hubTestSubscribe(t, h, hubTestRefs("a"), "stale-99", 4)
	if rp.Reset == nil || rp.Reset.Reason != "unknown" {
		t.Fatalf("reset = %+v, want unknown", rp.Reset)
	}
	_, rp = hubTestSubscribe(t, h, hubTestRefs("a"), rp.Reset.ID.String(), 4)
	if rp.Reset != nil {
		t.Fatalf("resuming from %s on an empty hub reset again: %+v", rp.Reset.ID, rp.Reset)
	}
}

func TestHubResetEvicted(t *testing.T) {
	h := NewHub()
	small := TopicRef{Name: "a", Ring: RingConfig{Replay: 2, ReplaySize: 1 << 20}}
	big := hubTestRefs("b")[0]
	for i := 1; i <= 5; i++ { // a keeps 4 and 5; 1..3 are evicted
		hubTestPublish(t, h, fmt.Sprint(i), small)
	}
	hubTestPublish(t, h, "6", big)
	hubTestPublish(t, h, "7", small, big) // a keeps 5, 7; 4 is evicted too

	tests := []struct {
		name      string
		refs      []TopicRef
		after     uint64
		wantReset bool
		want      []uint64
	}{
		{"from the start", []TopicRef{small}, 0, true, []uint64{5, 7}},
		{"an evicted event after the resume point", []TopicRef{small}, 3, true, []uint64{5, 7}},
		{"only older events were evicted", []TopicRef{small}, 4, false, []uint64{5, 7}},
		{"resume at the oldest retained", []TopicRef{small}, 5, false, []uint64{7}},
		{"resume at 6, not in a", []TopicRef{small}, 6, false, []uint64{7}},
		{"eviction in another topic does not matter", []TopicRef{big}, 0, false, []uint64{6, 7}},
		{"both topics", []TopicRef{small, big}, 4, false, []uint64{5, 6, 7}},
		{"both topics, evicted", []TopicRef{big, small}, 2, true, []uint64{5, 6, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resume := hubTestResume(h, tc.after)
			_, rp := hubTestSubscribe(t, h, tc.refs, resume, 16)
			if got := hubTestSeqs(rp.Events); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("replayed %v, want %v", got, tc.want)
			}
			if !tc.wantReset {
				if rp.Reset != nil {
					t.Fatalf("unexpected reset %+v", rp.Reset)
				}
				return
			}
			if rp.Reset == nil {
				t.Fatal("no reset, but an event after the resume point was evicted")
			}
			if rp.Reset.Reason != "evicted" || rp.Reset.LastEventID != resume || rp.Reset.ID.Epoch != h.Epoch() {
				t.Fatalf("reset = %+v, want reason evicted, last_event_id %q", rp.Reset, resume)
			}
			if id, reason, echoed := hubTestResetData(t, rp.Reset); id != rp.Reset.ID.String() || reason != "evicted" || echoed != resume {
				t.Fatalf("reset wire: id %q reason %q last_event_id %q", id, reason, echoed)
			}
			_, rp2 := hubTestSubscribe(t, h, tc.refs, rp.Reset.ID.String(), 16)
			if rp2.Reset != nil {
				t.Fatalf("resuming from Reset.ID %s reset again: %+v", rp.Reset.ID, rp2.Reset)
			}
		})
	}
}

// The stream a subscriber gets is the reset, then the replayed events. A
// client that stores the reset's id and reconnects before the next event
// resumes from Reset.ID: whatever the replay held at or before that id is
// then lost without a word. So ids must increase along that stream.
func TestHubResetIDPrecedesReplay(t *testing.T) {
	h := NewHub()
	small := TopicRef{Name: "a", Ring: RingConfig{Replay: 1, ReplaySize: 1 << 20}}
	big := hubTestRefs("b")[0]
	hubTestPublish(t, h, "1", big)   // b keeps 1
	hubTestPublish(t, h, "2", small) // evicted from a by 3
	hubTestPublish(t, h, "3", small) // a keeps 3

	_, rp := hubTestSubscribe(t, h, []TopicRef{small, big}, hubTestResume(h, 0), 16)
	if rp.Reset == nil || rp.Reset.Reason != "evicted" {
		t.Fatalf("reset = %+v, want evicted", rp.Reset)
	}
	for _, ev := range rp.Events {
		if ev.ID.Seq <= rp.Reset.ID.Seq {
			t.Errorf("replayed event %s follows a reset with id %s: a client resuming from the reset's id never gets it",
				ev.ID, rp.Reset.ID)
		}
	}
	// The same, seen as a reconnect right after the reset.
	_, rp2 := hubTestSubscribe(t, h, []TopicRef{small, big}, rp.Reset.ID.String(), 16)
	for _, ev := range rp.Events {
		if ev.ID.Seq > rp.Reset.ID.Seq {
			continue
		}
		if !slices.Contains(hubTestSeqs(rp2.Events), ev.ID.Seq) && rp2.Reset == nil {
			t.Errorf("event %s was in the replay after the reset, but resuming from the reset's id %s neither replays it nor resets",
				ev.ID, rp.Reset.ID)
		}
	}
}

func TestHubRingSettingsFollowTheRef(t *testing.T) {
	h := NewHub()
	for i := 0; i < 5; i++ {
		hubTestPublish(t, h, "x", hubTestRefs("a")...)
	}
	// A reload lowered replay to 2: the next use of the topic applies it.
	_, rp := hubTestSubscribe(t, h, []TopicRef{{Name: "a", Ring: RingConfig{Replay: 2, ReplaySize: 1 << 20}}}, hubTestResume(h, 0), 4)
	if got := hubTestSeqs(rp.Events); !reflect.DeepEqual(got, []uint64{4, 5}) {
		t.Fatalf("replayed %v, want [4 5]", got)
	}
	if rp.Reset == nil || rp.Reset.Reason != "evicted" || rp.Reset.ID.Seq != 3 {
		t.Fatalf("reset = %+v, want evicted with seq 3", rp.Reset)
	}
}

func TestHubLastEventIDEcho(t *testing.T) {
	h := NewHub()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short", "abc", "abc"},
		{"127 bytes", strings.Repeat("a", 127), strings.Repeat("a", 127)},
		{"128 bytes", strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{"129 bytes", strings.Repeat("a", 129), strings.Repeat("a", 128)},
		{"4 KiB", strings.Repeat("0123456789abcdef", 256), strings.Repeat("0123456789abcdef", 8)},
		{"two-byte runes, even cut", strings.Repeat("é", 100), strings.Repeat("é", 64)},
		{"two-byte runes, cut inside one", "x" + strings.Repeat("é", 100), "x" + strings.Repeat("é", 63)},
		{"four-byte runes", strings.Repeat("🎉", 40), strings.Repeat("🎉", 32)},
		{"four-byte runes, offset", "ab" + strings.Repeat("🎉", 40), "ab" + strings.Repeat("🎉", 31)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rp := hubTestSubscribe(t, h, hubTestRefs("a"), tc.in, 4)
			if rp.Reset == nil {
				t.Fatal("no reset")
			}
			got := rp.Reset.LastEventID
			if got != tc.want {
				t.Fatalf("LastEventID = %q (%d bytes), want %q (%d bytes)", got, len(got), tc.want, len(tc.want))
			}
			if len(got) > maxEchoedIDLen || !strings.HasPrefix(tc.in, got) || !utf8.ValidString(got) {
				t.Fatalf("LastEventID %q is not a valid UTF-8 prefix of at most 128 bytes", got)
			}
			if _, _, echoed := hubTestResetData(t, rp.Reset); echoed != tc.want {
				t.Fatalf("reset wire echoes %q, want %q", echoed, tc.want)
			}
		})
	}
}

func TestHubSlowSubscriber(t *testing.T) {
	h := NewHub()
	slow, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 2)
	fast, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 16)
	slow.blockedSince.Store(1) // its socket took nothing for ages: a dead peer
	var fastGot []*Event
	wantDelivered := []int{2, 2, 1}
	for i, want := range wantDelivered {
		r := hubTestPublish(t, h, fmt.Sprint(i), hubTestRefs("a")...)
		if r.Delivered != want {
			t.Fatalf("publish %d: delivered %d, want %d", i+1, r.Delivered, want)
		}
		if i < 2 && hubTestIsClosed(slow.Done()) {
			t.Fatalf("slow subscriber dropped after %d events with a queue of 2", i+1)
		}
		fastGot = append(fastGot, hubTestDrain(fast)...) // the fast one reads as it goes
	}
	if !hubTestIsClosed(slow.Done()) {
		t.Fatal("slow subscriber's Done is not closed after its queue overflowed")
	}
	if hubTestIsClosed(fast.Done()) {
		t.Fatal("fast subscriber was dropped")
	}
	if got := hubTestSeqs(fastGot); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Fatalf("fast subscriber got %v, want [1 2 3]", got)
	}
	// What the slow one still holds is a gap-free prefix: it resumes from it.
	if got := hubTestSeqs(hubTestDrain(slow)); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("slow subscriber's queue holds %v, want [1 2]", got)
	}
	if st := h.Stats(); st.Subscribers != 1 {
		t.Fatalf("Stats.Subscribers = %d after the drop, want 1", st.Subscribers)
	}
	r := hubTestPublish(t, h, "4", hubTestRefs("a")...)
	if r.Delivered != 1 {
		t.Fatalf("after the drop delivered = %d, want 1", r.Delivered)
	}
	if got := hubTestDrain(slow); len(got) != 0 {
		t.Fatalf("a dropped subscriber still receives: %v", hubTestSeqs(got))
	}
	slow.Close() // closing a dropped subscription changes nothing
	if st := h.Stats(); st.Subscribers != 1 {
		t.Fatalf("Stats.Subscribers = %d after closing a dropped subscription, want 1", st.Subscribers)
	}
}

// A subscriber dropped in the middle of a batch must not receive later
// events of that batch: what it has when Done closes must be a gap-free
// run, since it resumes from the last id it wrote. A reader that frees a
// slot while the batch is being queued exposes the difference, so this runs
// many rounds with a reader racing a publisher of batches.
func TestHubDropInBatchLeavesNoGap(t *testing.T) {
	const rounds, batchLen = 1000, 32
	for round := 0; round < rounds; round++ {
		h := NewHub()
		s, _, err := h.Subscribe(hubTestRefs("a"), "", 1)
		if err != nil {
			t.Fatal(err)
		}
		// Its socket counts as dead, so a full queue drops it rather than
		// making the publisher wait for the reader.
		s.blockedSince.Store(1)
		got := make(chan []uint64)
		go func() {
			var seqs []uint64
			for {
				select {
				case <-s.Ready():
					seqs = append(seqs, hubTestSeqs(s.Take(nil))...)
				case <-s.Done():
					// Everything queued for it was queued before Done closed.
					seqs = append(seqs, hubTestSeqs(hubTestDrain(s))...)
					got <- seqs
					return
				}
			}
		}()
		batch := make([]Publication, batchLen)
		for i := range batch {
			batch[i] = Publication{Message: &Message{Data: "x"}, Topics: hubTestRefs("a")}
		}
		for i := 0; i < 10000 && !hubTestIsClosed(s.Done()); i++ {
			if _, err := h.publish(batch); err != nil {
				t.Fatal(err)
			}
		}
		_ = h.Close() // if the reader always kept up, end it here
		seqs := <-got
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("round %d: the dropped subscriber received %v…: event %d is missing before %d",
					round, seqs[:i+1], i+1, seq)
			}
		}
	}
}

// The seam: publishers and resuming subscribers race. Every subscriber must
// see its replay followed by its live events as exactly the events of its
// topics after its resume point, in order, none twice.
func TestHubResumeSeam(t *testing.T) {
	const (
		publishers  = 4
		perPub      = 250
		subscribers = 24
	)
	topicSets := [][]string{{"a"}, {"b"}, {"c"}, {"a", "b"}, {"b", "c"}, {"a", "c"}, {"a", "b", "c"}}
	h := NewHub()
	start := make(chan struct{})
	// Publisher 0 closes these as it goes, so that subscribers join at
	// different depths of the history while publishing continues.
	milestones := make([]chan struct{}, 5)
	for i := range milestones {
		milestones[i] = make(chan struct{})
	}

	type published struct {
		seq    uint64
		topics []string
	}
	pubDone := make([][]published, publishers)
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mi := 0 // milestones closed so far
			if p == 0 {
				defer func() { // also when it fails: nobody waits forever
					for ; mi < len(milestones); mi++ {
						close(milestones[mi])
					}
				}()
			}
			<-start
			for i := 0; i < perPub; i++ {
				if p == 0 && i%(perPub/len(milestones)) == 0 && mi < len(milestones) {
					close(milestones[mi])
					mi++
				}
				topics := topicSets[(p*perPub+i)%len(topicSets)]
				var pubs []Publication
				// Mix single publications and small batches.
				n := 1 + i%3
				for k := 0; k < n; k++ {
					pubs = append(pubs, Publication{Message: &Message{Data: "x"}, Topics: hubTestRefs(topics...)})
				}
				res, err := h.publish(pubs)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range res {
					id, _ := ParseID(r.ID)
					pubDone[p] = append(pubDone[p], published{id.Seq, topics})
				}
			}
		}()
	}

	type subscribed struct {
		topics []string
		resume uint64
		fresh  bool // subscribed without a resume point
		sub    *Subscription
		replay Replay
	}
	subs := make([]subscribed, subscribers)
	for k := 0; k < subscribers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			<-milestones[k%len(milestones)]
			sd := subscribed{topics: topicSets[k%len(topicSets)], fresh: k%6 == 5}
			resume := ""
			if !sd.fresh {
				// A resume point somewhere in what was published so far.
				last := h.Stats().LastSeq
				sd.resume = last * uint64(k%4) / 4
				resume = hubTestResume(h, sd.resume)
			}
			s, rp, err := h.Subscribe(hubTestRefs(sd.topics...), resume, publishers*perPub*3+1)
			if err != nil {
				t.Error(err)
				return
			}
			sd.sub, sd.replay = s, rp
			subs[k] = sd
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	var all []published
	for _, l := range pubDone {
		all = append(all, l...)
	}
	slices.SortFunc(all, func(a, b published) int { return int(a.seq) - int(b.seq) })
	for i, p := range all {
		if p.seq != uint64(i+1) {
			t.Fatalf("published seqs are not 1..n: position %d holds %d", i, p.seq)
		}
	}
	replayed, live := 0, 0
	defer func() {
		t.Logf("%d events published; subscribers got %d replayed and %d live", len(all), replayed, live)
	}()
	for k, sd := range subs {
		t.Cleanup(sd.sub.Close)
		if sd.replay.Reset != nil {
			t.Fatalf("subscriber %d: unexpected reset %+v", k, sd.replay.Reset)
		}
		if hubTestIsClosed(sd.sub.Done()) {
			t.Fatalf("subscriber %d was dropped", k)
		}
		liveEvs := hubTestDrain(sd.sub)
		replayed += len(sd.replay.Events)
		live += len(liveEvs)
		got := append(hubTestSeqs(sd.replay.Events), hubTestSeqs(liveEvs)...)
		var want []uint64
		for _, p := range all {
			if p.seq > sd.resume && slices.ContainsFunc(p.topics, func(tp string) bool { return slices.Contains(sd.topics, tp) }) {
				want = append(want, p.seq)
			}
		}
		if sd.fresh {
			// Live only: a suffix of what its topics got.
			if len(sd.replay.Events) != 0 {
				t.Fatalf("subscriber %d without a resume point got a replay", k)
			}
			if len(got) > 0 {
				i := slices.Index(want, got[0])
				if i < 0 {
					t.Fatalf("subscriber %d got event %d, not one of its topics", k, got[0])
				}
				want = want[i:]
			} else {
				want = []uint64{}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("subscriber %d (%v, resume %d, fresh %v): got %d events, want %d; first difference at %d",
				k, sd.topics, sd.resume, sd.fresh, len(got), len(want), hubTestFirstDiff(got, want))
		}
	}
}

func hubTestFirstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func hubTestGroupRef(name, group string, groupMax int) TopicRef {
	return TopicRef{Name: name, Ring: hubTestRing, Group: group, GroupMax: groupMax}
}

func hubTestTopicNames(h *Hub) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for n := range h.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestHubPatternCapForgetsIdle(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTestGroupRef("chat/"+n, "chat/*", 3) }
	hubTestPublish(t, h, "1", ref("1"))
	hubTestPublish(t, h, "2", ref("2"))
	hubTestPublish(t, h, "3", ref("3"))
	hubTestPublish(t, h, "4", ref("1")) // chat/1 is used again: chat/2 is now the least recent
	hubTestPublish(t, h, "5", TopicRef{Name: "news", Ring: hubTestRing})
	hubTestPublish(t, h, "6", ref("4")) // over the cap: forgets chat/2
	if got, want := hubTestTopicNames(h), []string{"chat/1", "chat/3", "chat/4", "news"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}

	// A topic with a subscriber is never forgotten; idle ones go, least
	// recently used first.
	hubTestSubscribe(t, h, []TopicRef{ref("3")}, "", 4)
	hubTestPublish(t, h, "7", ref("5")) // forgets chat/1 (used at 4); chat/3 has a subscriber
	if got, want := hubTestTopicNames(h), []string{"chat/3", "chat/4", "chat/5", "news"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}

	// The cap is full of topics that hold history or have subscribers: a
	// subscriber of a new one is refused rather than forget history.
	if _, _, err := h.Subscribe([]TopicRef{ref("2")}, hubTestResume(h, 0), 4); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("Subscribe to a new topic with the cap full of history = %v, want ErrTooManyTopics", err)
	}
	// Resuming on a forgotten topic (a reload raised the cap): its events
	// are gone, and the subscriber is told so.
	ref = func(n string) TopicRef { return hubTestGroupRef("chat/"+n, "chat/*", 5) }
	_, rp := hubTestSubscribe(t, h, []TopicRef{ref("2")}, hubTestResume(h, 0), 4)
	if rp.Reset == nil || rp.Reset.Reason != "evicted" {
		t.Fatalf("resume on a forgotten topic: reset %+v, want evicted", rp.Reset)
	}
	if len(rp.Events) != 0 {
		t.Fatalf("a forgotten topic replayed %v", hubTestSeqs(rp.Events))
	}
	_, rp2 := hubTestSubscribe(t, h, []TopicRef{ref("2")}, rp.Reset.ID.String(), 4)
	if rp2.Reset != nil {
		t.Fatalf("resuming from Reset.ID %s reset again: %+v", rp.Reset.ID, rp2.Reset)
	}
	// A topic that was not forgotten still replays in full.
	_, rp = hubTestSubscribe(t, h, []TopicRef{ref("3")}, hubTestResume(h, 0), 4)
	if got := hubTestSeqs(rp.Events); !reflect.DeepEqual(got, []uint64{3}) {
		t.Fatalf("chat/3 replayed %v, want [3]", got)
	}
	// Literal topics have no cap.
	for i := 0; i < 20; i++ {
		hubTestPublish(t, h, "x", TopicRef{Name: fmt.Sprintf("lit/%d", i), Ring: hubTestRing})
	}
	if n := len(hubTestTopicNames(h)); n < 20 {
		t.Fatalf("literal topics were forgotten: %d topics left", n)
	}
}

func TestHubPatternCapTooManyTopics(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTestGroupRef("chat/"+n, "chat/*", 2) }
	s1, _ := hubTestSubscribe(t, h, []TopicRef{ref("1")}, "", 4)
	hubTestSubscribe(t, h, []TopicRef{ref("2")}, "", 4)
	news, _ := hubTestSubscribe(t, h, hubTestRefs("news"), "", 4)
	hubTestPublish(t, h, "1", hubTestRefs("news")...)
	hubTestDrain(news)

	if _, err := h.publish([]Publication{{Message: &Message{Data: "x"}, Topics: []TopicRef{ref("3")}}}); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("Publish past the cap with every topic subscribed = %v, want ErrTooManyTopics", err)
	}
	if _, _, err := h.Subscribe([]TopicRef{ref("3")}, "", 4); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("Subscribe past the cap = %v, want ErrTooManyTopics", err)
	}
	// A batch is all or nothing: the news event before the failing one is
	// not published either.
	_, err := h.publish([]Publication{
		{Message: &Message{Data: "news"}, Topics: hubTestRefs("news")},
		{Message: &Message{Data: "chat"}, Topics: []TopicRef{ref("3")}},
	})
	if !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("batch Publish = %v, want ErrTooManyTopics", err)
	}
	if st := h.Stats(); st.LastSeq != 1 || st.Subscribers != 3 {
		t.Fatalf("Stats = %+v after failed calls, want last seq 1 and 3 subscribers", st)
	}
	if got := hubTestDrain(news); len(got) != 0 {
		t.Fatalf("a failed batch delivered %v", hubTestSeqs(got))
	}
	// Once a topic is idle, there is room again.
	s1.Close()
	if r := hubTestPublish(t, h, "x", ref("3")); r.Delivered != 0 {
		t.Fatalf("delivered %d", r.Delivered)
	}
}

// One request may name several new topics of a capped group: the topics it
// has just created must not be the ones forgotten to make room for the next.
func TestHubPatternCapWithinOneRequest(t *testing.T) {
	g := func(n string, groupMax int) TopicRef { return hubTestGroupRef("g/"+n, "g/*", groupMax) }
	tests := []struct {
		name    string
		prepare []TopicRef // published to, one by one, first
		pubs    [][]TopicRef
	}{
		{"one publication, three new topics, cap 2", nil, [][]TopicRef{{g("a", 2), g("b", 2), g("c", 2)}}},
		{"two publications, cap 1", []TopicRef{g("x", 1)}, [][]TopicRef{{g("a", 1)}, {g("b", 1)}}},
		{"batch at the cap, cap 5", []TopicRef{g("1", 5), g("2", 5), g("3", 5), g("4", 5), g("5", 5)},
			[][]TopicRef{{g("a", 5)}, {g("b", 5)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/publish", func(t *testing.T) {
			h := NewHub()
			for _, r := range tc.prepare {
				hubTestPublish(t, h, "prep", r)
			}
			var pubs []Publication
			for _, refs := range tc.pubs {
				pubs = append(pubs, Publication{Message: &Message{Data: "x"}, Topics: refs})
			}
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Publish panicked (with the hub locked for good): %v", p)
					}
				}()
				_, err = h.publish(pubs)
			}()
			if err != nil && !errors.Is(err, ErrTooManyTopics) {
				t.Fatalf("Publish = %v, want nil or ErrTooManyTopics", err)
			}
		})
		t.Run(tc.name+"/subscribe", func(t *testing.T) {
			h := NewHub()
			for _, r := range tc.prepare {
				hubTestPublish(t, h, "prep", r)
			}
			var refs []TopicRef
			for _, rs := range tc.pubs {
				refs = append(refs, rs...)
			}
			s, _, err := h.Subscribe(refs, "", 16)
			if errors.Is(err, ErrTooManyTopics) {
				return // refusing is fine
			}
			if err != nil {
				t.Fatalf("Subscribe = %v", err)
			}
			defer s.Close()
			// Accepted: then every topic it asked for reaches it.
			for _, r := range refs {
				res, err := h.publish([]Publication{{Message: &Message{Data: "x"}, Topics: []TopicRef{r}}})
				if err != nil {
					t.Fatalf("publish to %s, which a subscriber holds: %v", r.Name, err)
				}
				if res[0].Delivered != 1 {
					t.Fatalf("publish to %s delivered %d, want 1: the subscription was accepted but is deaf to it", r.Name, res[0].Delivered)
				}
			}
		})
	}
}

func TestHubClose(t *testing.T) {
	h := NewHub()
	s1, _ := hubTestSubscribe(t, h, hubTestRefs("a", "b"), "", 4)
	s2, _ := hubTestSubscribe(t, h, hubTestRefs("b"), "", 4)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for i, s := range []*Subscription{s1, s2} {
		if !hubTestIsClosed(s.Done()) {
			t.Fatalf("subscriber %d: Done not closed by Close", i+1)
		}
	}
	if st := h.Stats(); st.Subscribers != 0 {
		t.Fatalf("Stats.Subscribers = %d after Close", st.Subscribers)
	}
	if _, err := h.publish([]Publication{{Message: &Message{Data: "x"}, Topics: hubTestRefs("a")}}); !errors.Is(err, ErrHubClosed) {
		t.Fatalf("Publish after Close = %v, want ErrHubClosed", err)
	}
	if _, _, err := h.Subscribe(hubTestRefs("a"), "", 4); !errors.Is(err, ErrHubClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrHubClosed", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	s1.Close()
	s1.Close()
	if st := h.Stats(); st.Subscribers != 0 {
		t.Fatalf("Stats.Subscribers = %d after closing subscriptions of a closed hub", st.Subscribers)
	}
}

func TestSubscriptionClose(t *testing.T) {
	h := NewHub()
	s, _ := hubTestSubscribe(t, h, hubTestRefs("a", "b"), "", 4)
	other, _ := hubTestSubscribe(t, h, hubTestRefs("a"), "", 4)
	s.Close()
	if hubTestIsClosed(s.Done()) {
		t.Fatal("Close by the subscriber closed Done: Done means dropped by the hub")
	}
	s.Close()
	if st := h.Stats(); st.Subscribers != 1 {
		t.Fatalf("Stats.Subscribers = %d, want 1", st.Subscribers)
	}
	if r := hubTestPublish(t, h, "x", hubTestRefs("a", "b")...); r.Delivered != 1 {
		t.Fatalf("delivered = %d after one subscriber left, want 1", r.Delivered)
	}
	if got := hubTestDrain(s); len(got) != 0 {
		t.Fatalf("a closed subscription received %v", hubTestSeqs(got))
	}
	if got := hubTestDrain(other); len(got) != 1 {
		t.Fatalf("the other subscriber received %d events", len(got))
	}
}

func TestHubPrune(t *testing.T) {
	h := NewHub()
	for _, n := range []string{"gone", "held", "kept", "same"} {
		for i := 0; i < 3; i++ {
			hubTestPublish(t, h, n, hubTestRefs(n)...)
		}
	}
	held, _ := hubTestSubscribe(t, h, hubTestRefs("held"), "", 4)
	shrunk := RingConfig{Replay: 1, ReplaySize: 1 << 20}
	var asked []string
	h.Prune(func(name string) (RingConfig, bool) {
		asked = append(asked, name)
		switch name {
		case "kept":
			return shrunk, true
		case "same":
			return hubTestRing, true
		}
		return RingConfig{}, false
	})
	slices.Sort(asked)
	if want := []string{"gone", "held", "kept", "same"}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("Prune asked about %v, want %v", asked, want)
	}
	if got, want := hubTestTopicNames(h), []string{"held", "kept", "same"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics after Prune %v, want %v (a topic with a subscriber stays)", got, want)
	}
	if r := hubTestPublish(t, h, "x", hubTestRefs("held")...); r.Delivered != 1 || len(hubTestDrain(held)) != 1 {
		t.Fatalf("the held topic's subscriber lost its stream: delivered %d", r.Delivered)
	}
	// The kept topic's ring was shrunk at once.
	h.mu.Lock()
	n := h.topics["kept"].ring.len()
	h.mu.Unlock()
	if n != 1 {
		t.Fatalf("kept topic holds %d events after Prune shrank it to 1", n)
	}
	// A resume on the pruned topic is told its events are gone.
	_, rp := hubTestSubscribe(t, h, hubTestRefs("gone"), hubTestResume(h, 0), 4)
	if rp.Reset == nil || rp.Reset.Reason != "evicted" || len(rp.Events) != 0 {
		t.Fatalf("resume on a pruned topic: reset %+v, events %v; want evicted, none", rp.Reset, hubTestSeqs(rp.Events))
	}
	_, rp = hubTestSubscribe(t, h, hubTestRefs("same"), hubTestResume(h, 0), 4)
	if got := hubTestSeqs(rp.Events); !reflect.DeepEqual(got, []uint64{10, 11, 12}) || rp.Reset != nil {
		t.Fatalf("untouched topic replayed %v (reset %+v), want [10 11 12]", got, rp.Reset)
	}
}

// Topics pruned from a group free their place under the group's cap.
func TestHubPruneFreesGroupRoom(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTestGroupRef("chat/"+n, "chat/*", 2) }
	hubTestPublish(t, h, "1", ref("1"))
	hubTestPublish(t, h, "2", ref("2"))
	h.Prune(func(string) (RingConfig, bool) { return RingConfig{}, false })
	if n := h.Stats().Topics; n != 0 {
		t.Fatalf("%d topics left after pruning all", n)
	}
	// Two held topics fit again; a third does not.
	hubTestSubscribe(t, h, []TopicRef{ref("3")}, "", 4)
	hubTestSubscribe(t, h, []TopicRef{ref("4")}, "", 4)
	if _, _, err := h.Subscribe([]TopicRef{ref("5")}, "", 4); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("third held topic under a cap of 2: %v, want ErrTooManyTopics", err)
	}
}

// The rings' limits seen through the hub: replay 0 keeps nothing and
// replay_age drops old events, and a resume before them is a gap.
func TestHubReplayLimits(t *testing.T) {
	tests := []struct {
		name      string
		ring      RingConfig
		advance   time.Duration // clock moved after publishing
		after     uint64        // resume point
		wantReset bool
		want      []uint64
	}{
		{"replay 0, resume before", RingConfig{Replay: 0, ReplaySize: 1 << 20}, 0, 0, true, []uint64{}},
		{"replay 0, resume at the newest", RingConfig{Replay: 0, ReplaySize: 1 << 20}, 0, 3, false, []uint64{}},
		{"age not reached", RingConfig{Replay: 10, ReplaySize: 1 << 20, ReplayAge: time.Minute}, 59 * time.Second, 0, false, []uint64{1, 2, 3}},
		{"age passed", RingConfig{Replay: 10, ReplaySize: 1 << 20, ReplayAge: time.Minute}, 2 * time.Minute, 0, true, []uint64{}},
		{"age passed, resume at the newest", RingConfig{Replay: 10, ReplaySize: 1 << 20, ReplayAge: time.Minute}, 2 * time.Minute, 3, false, []uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := replayTestClock(t)
			h := NewHub()
			ref := TopicRef{Name: "a", Ring: tc.ring}
			for i := 0; i < 3; i++ {
				hubTestPublish(t, h, "x", ref)
			}
			set(replayTestT0.Add(tc.advance))
			_, rp := hubTestSubscribe(t, h, []TopicRef{ref}, hubTestResume(h, tc.after), 4)
			if got := hubTestSeqs(rp.Events); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("replayed %v, want %v", got, tc.want)
			}
			if (rp.Reset != nil) != tc.wantReset {
				t.Fatalf("reset = %+v, want reset %v", rp.Reset, tc.wantReset)
			}
			if rp.Reset != nil && (rp.Reset.Reason != "evicted" || rp.Reset.ID.Seq != 3) {
				t.Fatalf("reset = %+v, want evicted with seq 3", rp.Reset)
			}
		})
	}
}

// publishTo publishes through an Engine with no options, as a handler
// without an Idempotency-Key does.
func publishTo(e Engine, pubs []Publication) ([]PublishResult, error) {
	out, err := e.Publish(context.Background(), pubs, PublishOptions{})
	return out.Results, err
}

// hubTestOnConnect is a topic whose subscribers without a resume point get
// its newest n events first.
func hubTestOnConnect(name string, n int) TopicRef {
	ring := hubTestRing
	ring.OnConnect = n
	return TopicRef{Name: name, Ring: ring}
}

// TestHubReplayOnConnect: a subscriber without a resume point gets the
// newest replay_on_connect events of each of its topics, merged in id
// order, an event of two topics once; then live events. A resuming
// subscriber gets exactly what it missed, whatever replay_on_connect says.
func TestHubReplayOnConnect(t *testing.T) {
	h := NewHub()
	a, b, c := hubTestOnConnect("a", 3), hubTestOnConnect("b", 2), hubTestOnConnect("c", 0)
	for _, refs := range [][]TopicRef{{a}, {b}, {a, b}, {c}, {a}, {b}, {a}, {c}} { // seqs 1..8
		hubTestPublish(t, h, "x", refs...)
	}

	sub, rp := hubTestSubscribe(t, h, []TopicRef{a, b, c}, "", 16)
	// a's newest 3: 3 5 7; b's newest 2: 3 6; c: none.
	if got := hubTestSeqs(rp.Events); !slices.Equal(got, []uint64{3, 5, 6, 7}) || rp.Reset != nil {
		t.Fatalf("initial state %v (reset %+v), want [3 5 6 7]", got, rp.Reset)
	}
	hubTestPublish(t, h, "live", a, b, c)
	if got := hubTestSeqs(hubTestDrain(sub)); !slices.Equal(got, []uint64{9}) {
		t.Fatalf("live after the initial state %v, want [9]", got)
	}

	// A resume point: everything after it, not the newest n.
	_, rp = hubTestSubscribe(t, h, []TopicRef{a, b, c}, hubTestResume(h, 2), 16)
	if got := hubTestSeqs(rp.Events); !slices.Equal(got, []uint64{3, 4, 5, 6, 7, 8, 9}) || rp.Reset != nil {
		t.Fatalf("resume from 2 replayed %v (reset %+v), want 3..9", got, rp.Reset)
	}
	// Resuming from the newest id replays nothing, however large n is.
	_, rp = hubTestSubscribe(t, h, []TopicRef{a, b}, hubTestResume(h, 9), 16)
	if len(rp.Events) != 0 || rp.Reset != nil {
		t.Fatalf("resume from the newest id replayed %v (reset %+v)", hubTestSeqs(rp.Events), rp.Reset)
	}
	// An unknown resume point is a reset, not the initial state.
	_, rp = hubTestSubscribe(t, h, []TopicRef{a}, "nonsense", 16)
	if len(rp.Events) != 0 || rp.Reset == nil || rp.Reset.Reason != "unknown" {
		t.Fatalf("an unknown resume point got %v, reset %+v; want only an unknown reset", hubTestSeqs(rp.Events), rp.Reset)
	}

	// More asked than retained: what is retained. A topic that does not
	// exist yet: nothing.
	few := hubTestOnConnect("few", 100)
	hubTestPublish(t, h, "1", few)
	hubTestPublish(t, h, "2", few)
	_, rp = hubTestSubscribe(t, h, []TopicRef{few, hubTestOnConnect("new", 5)}, "", 16)
	if got := hubTestSeqs(rp.Events); !slices.Equal(got, []uint64{10, 11}) {
		t.Fatalf("replay_on_connect 100 of 2 retained: %v, want [10 11]", got)
	}
	// The ring bounds it too: replay 2 keeps 2 of 4.
	small := TopicRef{Name: "small", Ring: RingConfig{Replay: 2, ReplaySize: 1 << 40, OnConnect: 2}}
	for range 4 {
		hubTestPublish(t, h, "s", small)
	}
	sub, rp = hubTestSubscribe(t, h, []TopicRef{small}, "", 16)
	sub.Close() // it reads nothing: publishers must not wait for it
	if got := hubTestSeqs(rp.Events); !slices.Equal(got, []uint64{14, 15}) {
		t.Fatalf("replay 2, replay_on_connect 2: %v, want [14 15]", got)
	}
	// The replay is a copy: events appended to the ring afterwards do not
	// change it.
	before := hubTestSeqs(rp.Events)
	for range 40 {
		hubTestPublish(t, h, "s", small)
	}
	if got := hubTestSeqs(rp.Events); !slices.Equal(got, before) {
		t.Fatalf("the initial state changed from %v to %v after later publishes", before, got)
	}
}

// TestHubReplayOnConnectSeam: subscribers without a resume point join while
// publishers publish. Each gets its topic's newest n events at the moment
// it joined, then every later event: one unbroken run of the topic's
// events, none twice.
func TestHubReplayOnConnectSeam(t *testing.T) {
	const (
		publishers  = 3
		perPub      = 300
		subscribers = 30
	)
	a, b := hubTestOnConnect("a", 7), hubTestOnConnect("b", 3)
	sets := [][]TopicRef{{a}, {b}, {a, b}}
	h := NewHub()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range perPub {
				if _, err := h.publish([]Publication{{Message: &Message{Data: "x"}, Topics: sets[(p+i)%len(sets)]}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	type joined struct {
		ref    TopicRef
		sub    *Subscription
		replay []*Event
	}
	subs := make([]joined, subscribers)
	for k := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Join at different depths of the history, while publishing.
			for h.Stats().LastSeq < uint64(k*publishers*perPub/subscribers) {
				runtime.Gosched()
			}
			ref := []TopicRef{a, b}[k%2]
			s, rp, err := h.Subscribe([]TopicRef{ref}, "", publishers*perPub+1)
			if err != nil {
				t.Error(err)
				return
			}
			subs[k] = joined{ref, s, rp.Events}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	// Every event of a topic, in order, from the ring (large enough to
	// hold them all).
	all := map[string][]uint64{}
	for _, ref := range []TopicRef{a, b} {
		h.mu.Lock()
		all[ref.Name] = hubTestSeqs(h.topics[ref.Name].ring.after(0))
		h.mu.Unlock()
	}
	replayed, live := 0, 0
	for k, j := range subs {
		t.Cleanup(j.sub.Close)
		liveEvs := hubTestDrain(j.sub)
		replayed += len(j.replay)
		live += len(liveEvs)
		got := append(hubTestSeqs(j.replay), hubTestSeqs(liveEvs)...)
		want := all[j.ref.Name]
		if len(got) == 0 {
			t.Fatalf("subscriber %d of %s got nothing", k, j.ref.Name)
		}
		i := slices.Index(want, got[0])
		if i < 0 || !slices.Equal(got, want[i:]) {
			t.Fatalf("subscriber %d of %s: got %d events from %d, not an unbroken run of the topic's events (first difference at %d)",
				k, j.ref.Name, len(got), got[0], hubTestFirstDiff(got, want[max(i, 0):]))
		}
		// The replay is the newest n at the join: n events, or all there
		// were then.
		if n := j.ref.Ring.OnConnect; len(j.replay) != n && i != 0 {
			t.Fatalf("subscriber %d of %s got %d events first, want %d", k, j.ref.Name, len(j.replay), n)
		}
	}
	t.Logf("subscribers got %d events first and %d live", replayed, live)
}
