package caddysse

import (
	"errors"
	"slices"
	"strconv"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/redishub"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics in Caddy's registry (admin /metrics). Caddy gives every loaded
// configuration a fresh registry, so each configuration's sse app
// registers one collector there: no metric is registered twice, whatever
// the reloads. The collector holds no numbers of its own: at scrape time
// it reads the counters of the pooled hubs (internal/hub/counters.go), which outlive
// configurations, so a reload resets nothing. Labels are the hub and the
// topic as declared (a pattern stands for all of its concrete topics), so
// cardinality is bounded by the configuration, never by clients. For the
// same reason every label value is known when the configuration loads, and
// every series is reported from then on, a counter at 0 until something is
// counted: each hub's engine_up and publish duration, each declared topic's
// series with every reset and drop reason, each publish refusal status
// (docs/operations.md, "Metrics").

const metricsNS = "caddy_sse_"

var (
	descSubscribers = prometheus.NewDesc(metricsNS+"subscribers",
		"Open streams subscribed to the declared topic (a stream of several topics counts in each).",
		[]string{"hub", "topic"}, nil)
	descPublished = prometheus.NewDesc(metricsNS+"published_total",
		"Events published to the declared topic through this instance.",
		[]string{"hub", "topic"}, nil)
	descDelivered = prometheus.NewDesc(metricsNS+"delivered_total",
		"Events queued for this instance's subscribers of the declared topic (once per subscriber and event).",
		[]string{"hub", "topic"}, nil)
	descReplayed = prometheus.NewDesc(metricsNS+"replayed_total",
		"Events sent from the declared topic's history to resuming subscribers.",
		[]string{"hub", "topic"}, nil)
	descResets = prometheus.NewDesc(metricsNS+"resets_total",
		"Resuming subscribers sent a reset event, by reason (evicted, unknown).",
		[]string{"hub", "topic", "reason"}, nil)
	descDropped = prometheus.NewDesc(metricsNS+"subscribers_dropped_total",
		"Streams closed by the server, by reason (slow, overload, protocol, shutdown).",
		[]string{"hub", "topic", "reason"}, nil)
	descRejected = prometheus.NewDesc(metricsNS+"publish_rejected_total",
		"Publish requests refused, by HTTP status.",
		[]string{"hub", "status"}, nil)
	descDuration = prometheus.NewDesc(metricsNS+"publish_duration_seconds",
		"Time one publish call spent in the engine: waiting for room, storing, queueing (a held stream counts per batch).",
		[]string{"hub"}, nil)
	descEngineUp = prometheus.NewDesc(metricsNS+"engine_up",
		"1 when the hub's engine answers (always for memory; Redis reachable and answering pings).",
		[]string{"hub"}, nil)
)

// publishRejectStatuses are the statuses sse_publish and sse_mercure refuse
// a publish with (docs/publishing.md, docs/mercure.md; a test keeps this
// list and those tables the same). Each hub reports all of them from the
// moment its configuration loads, at 0 until counted, so that rate() and
// alerts see a series from the start rather than none until the first
// refusal. Every hub gets the whole list whatever routes publish to it:
// a reload that adds a route adds no series, and a status counted by a
// route since removed stays reported.
var publishRejectStatuses = []int{400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 503, 504}

// metricsCollector reports the hubs of one configuration.
type metricsCollector struct{ app *App }

// registerMetrics adds the configuration's collector to its registry.
func registerMetrics(reg *prometheus.Registry, a *App) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(metricsCollector{a})
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		return nil
	}
	return err
}

// Describe sends every metric's descriptor.
func (metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubscribers, descPublished, descDelivered, descReplayed,
		descResets, descDropped, descRejected, descDuration, descEngineUp} {
		ch <- d
	}
}

// hubView is what the collector reads of one hub, copied under the app's
// lock so that collecting holds no lock of the app.
type hubView struct {
	name     string
	engine   hub.Engine
	declared []string
}

// Collect reads the hubs' counters.
func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	c.app.mu.Lock()
	views := make([]hubView, 0, len(c.app.hubs))
	for name, e := range c.app.hubs {
		views = append(views, hubView{name: name, engine: e, declared: c.app.tables[name].Declared()})
	}
	c.app.mu.Unlock()
	for _, v := range views {
		collectHub(ch, v)
	}
}

func collectHub(ch chan<- prometheus.Metric, v hubView) {
	ctr := v.engine.Counters()
	up := 1.0 // memory
	if r, ok := v.engine.(*redishub.RedisHub); ok && !r.Healthy() {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descEngineUp, prometheus.GaugeValue, up, v.name)
	for _, topic := range v.declared {
		s, _ := ctr.Snapshot(topic)
		ch <- prometheus.MustNewConstMetric(descSubscribers, prometheus.GaugeValue, float64(s.Subscribers), v.name, topic)
		ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(s.Published), v.name, topic)
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(s.Delivered), v.name, topic)
		ch <- prometheus.MustNewConstMetric(descReplayed, prometheus.CounterValue, float64(s.Replayed), v.name, topic)
		for i, reason := range hub.ResetReasons {
			ch <- prometheus.MustNewConstMetric(descResets, prometheus.CounterValue, float64(s.Resets[i]), v.name, topic, reason)
		}
		for _, r := range hub.DropReasons() {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped[r]), v.name, topic, r.String())
		}
	}
	p := ctr.Publishes()
	for _, status := range publishRejectStatuses {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(p.Rejected[status]), v.name, strconv.Itoa(status))
	}
	for status, n := range p.Rejected {
		if !slices.Contains(publishRejectStatuses, status) {
			ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(n), v.name, strconv.Itoa(status))
		}
	}
	buckets := make(map[float64]uint64, len(hub.PublishBuckets))
	for i, b := range hub.PublishBuckets {
		buckets[b] = p.Buckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(descDuration, p.Count, p.Sum, buckets, v.name)
}

// Interface guard
var _ prometheus.Collector = metricsCollector{}
