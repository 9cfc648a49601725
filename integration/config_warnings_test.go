package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// noTopicsWarning is the start of the warning Caddy logs at load for an
// sse_publish whose hub has no declared topic.
const noTopicsWarning = "sse_publish publishes to a hub in which no sse handler declares a topic"

// hubsWarnedWithoutTopics returns the hubs named by that warning in Caddy's
// log so far, in log order.
func hubsWarnedWithoutTopics(t *testing.T, c *caddyProc) []string {
	t.Helper()
	return hubsWarnedIn(t, c.logs())
}

// hubsWarnedIn is hubsWarnedWithoutTopics for a log read otherwise.
func hubsWarnedIn(t *testing.T, log string) []string {
	t.Helper()
	var hubs []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, noTopicsWarning) {
			continue
		}
		var entry struct {
			Level, Logger, Hub string
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry.Level != "warn" || entry.Logger != "sse" {
			t.Errorf("level %q, logger %q: want a warning of the sse app: %s", entry.Level, entry.Logger, line)
		}
		hubs = append(hubs, entry.Hub)
	}
	return hubs
}

// An sse_publish whose hub no sse handler declares a topic in (a misspelt
// hub name, a forgotten route) can only refuse: Caddy says so at load,
// naming that hub and no other. A reload that declares a topic there
// silences it.
func TestPublishToHubWithoutTopicsWarnsAtLoad(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish
	sse_publish /orphan {
		hub orphan
	}
}`)
	// Apps start before Caddy says it serves, and the log is read in
	// order: the warning is in by now.
	c.waitLog(`sse route missing?)","hub":"orphan"`)
	if got := hubsWarnedWithoutTopics(t, c); !slices.Equal(got, []string{"orphan"}) {
		t.Fatalf("warned about hubs %q, want exactly [orphan]\n%s", got, c.logs())
	}

	// Now "orphan" has a topic and "other" has none. The warnings of one
	// load come in hub order, so once "other" is named, a warning about
	// "orphan" would have come already.
	c.reload(`http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse /o {
		hub orphan
		topic x
	}
	sse_publish /publish
	sse_publish /orphan {
		hub orphan
	}
	sse_publish /other {
		hub other
	}
}`)
	// The warning itself: "hub":"other" alone also matches the handler's
	// provisioning line, which comes first.
	c.waitLog(`sse route missing?)","hub":"other"`)
	if got := hubsWarnedWithoutTopics(t, c); !slices.Equal(got, []string{"orphan", "other"}) {
		t.Fatalf("warned about hubs %q, want [orphan] at start and [other] after the reload\n%s", got, c.logs())
	}
}
