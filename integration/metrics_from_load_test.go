package integration

import (
	"fmt"
	"sort"
	"testing"
)

// Every caddy_sse_ series whose labels the configuration determines is in
// the scrape from the moment the configuration loads, at 0: an alert on
// rate(caddy_sse_publish_rejected_total[5m]) or on an absent series works
// before the first refusal (docs/operations.md, "Metrics").

const loadMetricsSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
		topic chat/*
	}
	sse /ops {
		hub ops
		topic alerts
	}
	sse_publish /publish {
		token secret
	}
	sse_mercure /.well-known/mercure {
		hub mercure
		issuer https://localhost {
			publisher {
				jwt "!ChangeThisMercureHubJWTSecretKey!" HS256
			}
		}
		anonymous
	}
}
`

// The same Caddy after a reload: hub ops and topic chat/* are gone, hub
// audit and topic sport are new.
const loadMetricsReloadSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
		topic sport
	}
	sse /audit {
		hub audit
		topic trail
	}
	sse_publish /publish {
		token secret
	}
	sse_mercure /.well-known/mercure {
		hub mercure
		issuer https://localhost {
			publisher {
				jwt "!ChangeThisMercureHubJWTSecretKey!" HS256
			}
		}
		anonymous
	}
}
`

// loadSeries is every series a configuration with these hubs (hub ->
// declared topics) reports before anything happened, with its value.
func loadSeries(hubs map[string][]string) map[string]float64 {
	out := make(map[string]float64)
	for h, topics := range hubs {
		hl := fmt.Sprintf(`hub=%q`, h)
		out[series("caddy_sse_engine_up", hl)] = 1
		for _, le := range []string{"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
			"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
			out[series("caddy_sse_publish_duration_seconds_bucket", fmt.Sprintf(`%s,le=%q`, hl, le))] = 0
		}
		out[series("caddy_sse_publish_duration_seconds_sum", hl)] = 0
		out[series("caddy_sse_publish_duration_seconds_count", hl)] = 0
		for _, status := range []string{"400", "401", "403", "404", "405", "408", "409", "413", "415", "422", "429", "503", "504"} {
			out[series("caddy_sse_publish_rejected_total", fmt.Sprintf(`%s,status=%q`, hl, status))] = 0
		}
		for _, topic := range topics {
			tl := fmt.Sprintf(`%s,topic=%q`, hl, topic)
			for _, name := range []string{"caddy_sse_subscribers", "caddy_sse_published_total",
				"caddy_sse_delivered_total", "caddy_sse_replayed_total"} {
				out[series(name, tl)] = 0
			}
			for _, reason := range []string{"evicted", "unknown"} {
				out[series("caddy_sse_resets_total", fmt.Sprintf(`%s,reason=%q,topic=%q`, hl, reason, topic))] = 0
			}
			for _, reason := range []string{"slow", "overload", "protocol", "shutdown"} {
				out[series("caddy_sse_subscribers_dropped_total", fmt.Sprintf(`%s,reason=%q,topic=%q`, hl, reason, topic))] = 0
			}
		}
	}
	return out
}

// exactMetrics checks that got holds exactly the series of want, with
// their values, listing what is missing, extra or different.
func exactMetrics(t *testing.T, got, want map[string]float64) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing: "+k)
		} else if g != v {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", k, g, v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected: %s = %v", k, v))
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

// Right after Caddy loads the configuration, before any subscribe or
// publish, every family is in the scrape for each hub, declared topic,
// reason and refusal status, at 0 (engine_up at 1). A reload reports the
// new configuration's hubs and topics the same way, and no longer those it
// removed.
func TestMetricsExistFromLoad(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, loadMetricsSite)
	exactMetrics(t, scrapeMetrics(t, c), loadSeries(map[string][]string{
		"default": {"news", "chat/*"},
		"ops":     {"alerts"},
		"mercure": {"~mercure"}, // every sse_mercure update lives in this one topic
	}))
	if t.Failed() {
		return
	}

	c.reload(loadMetricsReloadSite)
	exactMetrics(t, scrapeMetrics(t, c), loadSeries(map[string][]string{
		"default": {"news", "sport"},
		"audit":   {"trail"},
		"mercure": {"~mercure"},
	}))
}
