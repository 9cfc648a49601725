package caddysse

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metricsTestApp is an sse app holding one memory hub with the given
// declarations, as provisioning would leave it.
func metricsTestApp(t *testing.T, h hub.Engine, decls ...hub.TopicDecl) *App {
	t.Helper()
	table := hub.NewTopicTable()
	for _, d := range decls {
		if err := table.Add(d, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return &App{hubs: map[string]hub.Engine{"default": h}, tables: map[string]*hub.TopicTable{"default": table}}
}

// metricsTestGather scrapes reg into name{label=value,...} -> value, with
// histograms as their sample count.
func metricsTestGather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// The collector reports the hub's counters under the declared names, a
// pattern for all its concrete topics, in a pedantic registry (which checks
// the descriptors); a second configuration's registry gets the same
// values: nothing is reset or registered twice.
func TestMetricsCollector(t *testing.T) {
	h := hub.NewHub()
	pattern := hub.TopicDecl{Name: "chat/*", Ring: hubtest.Ring, MaxTopics: 10}
	app := metricsTestApp(t, h, hub.TopicDecl{Name: "news", Ring: hubtest.Ring}, pattern)
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg, app); err != nil {
		t.Fatal(err)
	}
	if err := registerMetrics(reg, app); err != nil {
		t.Fatalf("registering the same app again: %v", err)
	}
	chat := hubtest.GroupRef("chat/x", "chat/*", 10)
	hubtest.Subscribe(t, h, []hub.TopicRef{chat}, "", 8)
	hubtest.PublishData(t, h, "hello", chat)
	hubtest.PublishData(t, h, "hello", hubtest.GroupRef("chat/y", "chat/*", 10))
	h.Counters().Reject(401)
	h.Counters().ObservePublish(1000)

	want := map[string]float64{
		`caddy_sse_engine_up{hub=default}`:                                        1,
		`caddy_sse_subscribers{hub=default,topic=chat/*}`:                         1,
		`caddy_sse_published_total{hub=default,topic=chat/*}`:                     2,
		`caddy_sse_delivered_total{hub=default,topic=chat/*}`:                     1,
		`caddy_sse_published_total{hub=default,topic=news}`:                       0,
		`caddy_sse_replayed_total{hub=default,topic=news}`:                        0,
		`caddy_sse_resets_total{hub=default,reason=unknown,topic=chat/*}`:         0,
		`caddy_sse_subscribers_dropped_total{hub=default,reason=slow,topic=news}`: 0,
		`caddy_sse_publish_rejected_total{hub=default,status=401}`:                1,
		`caddy_sse_publish_duration_seconds{hub=default}`:                         1,
	}
	got := metricsTestGather(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.Contains(k, "chat/x") || strings.Contains(k, "chat/y") {
			t.Errorf("a concrete topic of a pattern is a label: %s", k)
		}
	}
	// A reload: a new configuration, a new registry, the same pooled hub.
	reg2 := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg2, metricsTestApp(t, h, hub.TopicDecl{Name: "news", Ring: hubtest.Ring}, pattern)); err != nil {
		t.Fatal(err)
	}
	if g := metricsTestGather(t, reg2)[`caddy_sse_published_total{hub=default,topic=chat/*}`]; g != 2 {
		t.Fatalf("after a reload, published = %v, want 2", g)
	}
}

// A hub reports every publish refusal status at 0 from the start, one
// series each (the pedantic registry refuses duplicates), and a status
// outside the list once it is counted.
func TestMetricsRejectStatusesFromStart(t *testing.T) {
	h := hub.NewHub()
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg, metricsTestApp(t, h)); err != nil {
		t.Fatal(err)
	}
	rejected := func() map[string]float64 {
		out := make(map[string]float64)
		for k, v := range metricsTestGather(t, reg) {
			if strings.HasPrefix(k, "caddy_sse_publish_rejected_total{") {
				out[k] = v
			}
		}
		return out
	}
	want := make(map[string]float64)
	for _, s := range []string{"400", "401", "403", "404", "405", "408", "409", "413", "415", "422", "429", "503", "504"} {
		want[`caddy_sse_publish_rejected_total{hub=default,status=`+s+`}`] = 0
	}
	if got := rejected(); !maps.Equal(got, want) {
		t.Fatalf("before any publish: %v, want %v", got, want)
	}
	h.Counters().Reject(503)
	h.Counters().Reject(418) // no handler answers it, but a count is never hidden
	want[`caddy_sse_publish_rejected_total{hub=default,status=503}`] = 1
	want[`caddy_sse_publish_rejected_total{hub=default,status=418}`] = 1
	if got := rejected(); !maps.Equal(got, want) {
		t.Fatalf("after two refusals: %v, want %v", got, want)
	}
}

// publishRejectStatuses are the statuses of the publish error tables of
// docs/publishing.md and docs/mercure.md: a status documented there and
// missing here would have no series until its first refusal.
func TestPublishRejectStatusesAreTheDocumented(t *testing.T) {
	documented := make(map[int]bool)
	status := regexp.MustCompile(`\b[45]\d\d\b`)
	for _, doc := range []struct{ file, section string }{
		{"docs/publishing.md", "## Errors"},
		{"docs/mercure.md", "## Publishing"},
	} {
		b, err := os.ReadFile(doc.file)
		if err != nil {
			t.Fatal(err)
		}
		_, section, ok := strings.Cut(string(b), "\n"+doc.section+"\n")
		if !ok {
			t.Fatalf("%s has no %q section", doc.file, doc.section)
		}
		section, _, _ = strings.Cut(section, "\n## ")
		rows := 0
		for _, line := range strings.Split(section, "\n") {
			cells := strings.Split(line, "|")
			if !strings.HasPrefix(line, "|") || len(cells) < 3 {
				continue
			}
			for _, s := range status.FindAllString(cells[1], -1) {
				n, _ := strconv.Atoi(s)
				documented[n] = true
				rows++
			}
		}
		if rows == 0 {
			t.Fatalf("no statuses found in %s, %q", doc.file, doc.section)
		}
	}
	listed := make(map[int]bool)
	for _, s := range publishRejectStatuses {
		listed[s] = true
	}
	if !maps.Equal(documented, listed) {
		t.Fatalf("documented publish refusals %v, publishRejectStatuses %v", slices.Sorted(maps.Keys(documented)), publishRejectStatuses)
	}
}
