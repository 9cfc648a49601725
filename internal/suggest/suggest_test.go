package suggest

import "testing"

func TestClosest(t *testing.T) {
	sse := []string{"topic", "hub", "heartbeat", "coalesce", "retry", "write_timeout", "queue", "queue_size"}
	topic := []string{"replay", "replay_size", "replay_age", "replay_on_connect", "max_topics"}
	mercure := []string{"anonymous", "subscriptions", "publisher_jwt", "subscriber_jwt", "hub"}
	tests := []struct {
		got   string
		valid []string
		want  string // "" for no suggestion
	}{
		{"heartbeet", sse, "heartbeat"},         // a letter changed
		{"heartbeats", sse, "heartbeat"},        // one added
		{"hartbeat", sse, "heartbeat"},          // one dropped
		{"haertbeat", sse, "heartbeat"},         // two swapped: one edit
		{"HeartBeat", sse, "heartbeat"},         // case does not count
		{"write-timeout", sse, "write_timeout"}, // nor - for _
		{"tpoic", sse, "topic"},
		{"hbu", sse, "hub"}, // short names allow one edit
		{"queue_sise", sse, "queue_size"},
		{"replay_on_conect", topic, "replay_on_connect"},
		{"replay-on-connect", topic, "replay_on_connect"},
		{"max_topic", topic, "max_topics"},
		{"anonymus", mercure, "anonymous"},
		{"publish_jwt", mercure, "publisher_jwt"}, // two edits in eleven letters
		// Not near anything: no guess.
		{"interval", sse, ""},
		{"x", sse, ""},
		{"hbuu", sse, ""}, // two edits in three letters
		{"replay_count", topic, ""},
		{"anything", nil, ""},
	}
	for _, tc := range tests {
		got, ok := Closest(tc.got, tc.valid)
		if ok != (tc.want != "") || got != tc.want && ok {
			t.Errorf("Closest(%q) = %q, %v; want %q", tc.got, got, ok, tc.want)
		}
	}
}

func TestClosestPrefersTheNearestThenTheFirst(t *testing.T) {
	if got, _ := Closest("queue_siz", []string{"queue", "queue_size"}); got != "queue_size" {
		t.Errorf("got %q, want the nearer queue_size", got)
	}
	if got, _ := Closest("ab", []string{"xb", "ax"}); got != "xb" {
		t.Errorf("got %q, want xb, the first of two equally near", got)
	}
}

func TestHint(t *testing.T) {
	valid := []string{"window", "max_users"}
	for _, tc := range []struct{ got, want string }{
		{"windwo", ` (did you mean "window"? options: window, max_users)`},
		{"interval", ` (options: window, max_users)`},
	} {
		if h := Hint(tc.got, valid); h != tc.want {
			t.Errorf("Hint(%q) = %q, want %q", tc.got, h, tc.want)
		}
	}
	if h := Hint("x", nil); h != "" {
		t.Errorf("Hint with no valid names = %q, want none", h)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"abc", "abc", 0},
		{"kitten", "sitting", 3}, {"ab", "ba", 1}, {"ca", "abc", 3},
	} {
		if d := distance(tc.a, tc.b); d != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.want)
		}
		if d := distance(tc.b, tc.a); d != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d (not symmetric)", tc.b, tc.a, d, tc.want)
		}
	}
}
