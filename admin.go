package caddysse

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/redishub"

	"github.com/caddyserver/caddy/v2"
	"github.com/dustin/go-humanize"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves hub statistics on Caddy's admin endpoint, read-only JSON:
//
//	GET /sse/stats                        every hub, as the engines count it
//	GET /sse/hubs                         the running configuration's hubs
//	GET /sse/hubs/<hub>                   one of them
//	GET /sse/hubs/<hub>/topics            the concrete topics a hub holds, paged:
//	                                      ?limit=100 (at most 1000) &after=<topic>,
//	                                      "next" is the after= of the next page
//	GET /sse/hubs/<hub>/topics/<topic>    one topic (the rest of the path, slashes
//	                                      included), with its declaration's counters
//
// It reads the hubs that outlive configurations, so it answers across
// reloads and shows what a drill or an operator needs: how many
// subscribers are connected, how many were dropped, what is retained.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.sse", New: func() caddy.Module { return new(AdminAPI) }}
}

// Routes returns the admin routes.
func (a AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/sse/stats", Handler: caddy.AdminHandlerFunc(a.stats)},
		{Pattern: "/sse/hubs", Handler: caddy.AdminHandlerFunc(a.hubList)},
		{Pattern: "/sse/hubs/", Handler: caddy.AdminHandlerFunc(a.hubPath)},
	}
}

// Paging of GET /sse/hubs/<hub>/topics.
const (
	defaultTopicPage = 100
	maxTopicPage     = 1000
)

// runningApp is the sse app of the configuration that started last: the
// admin views name its hubs and resolve topics against its declarations.
var runningApp atomic.Pointer[App]

func (AdminAPI) stats(w http.ResponseWriter, r *http.Request) error {
	if err := onlyGet(r); err != nil {
		return err
	}
	out := struct {
		Hubs map[string]engineStats `json:"hubs"`
	}{Hubs: make(map[string]engineStats)}
	hubs.Range(func(key, value any) bool {
		h := value.(pooledHub)
		out.Hubs[h.name] = statsOf(h.Engine)
		return true
	})
	return writeAdminJSON(w, out)
}

// engineStats is a hub's stats as the admin API shows them: the engine's
// common ones, and the Redis engine's own details beside them.
type engineStats struct {
	hub.Stats
	*redishub.Details // nil for the memory engine: shows nothing
}

func statsOf(e hub.Engine) engineStats {
	st := engineStats{Stats: e.Stats()}
	if rh, ok := e.(*redishub.RedisHub); ok {
		d := rh.Details()
		st.Details = &d
	}
	return st
}

// hubSummary is one hub in GET /sse/hubs.
type hubSummary struct {
	Name string `json:"name"`
	engineStats
	RetainedSize string   `json:"retained_size"`
	Declared     []string `json:"declared"` // topics and patterns declared in the running configuration
}

func (AdminAPI) hubList(w http.ResponseWriter, r *http.Request) error {
	if err := onlyGet(r); err != nil {
		return err
	}
	out := struct {
		Hubs []hubSummary `json:"hubs"`
	}{Hubs: []hubSummary{}}
	if a := runningApp.Load(); a != nil {
		for _, name := range a.hubNames() {
			e, table := a.lookupHub(name)
			out.Hubs = append(out.Hubs, summarize(name, e, table))
		}
	}
	return writeAdminJSON(w, out)
}

func summarize(name string, e hub.Engine, table *hub.TopicTable) hubSummary {
	st := statsOf(e)
	return hubSummary{Name: name, engineStats: st, RetainedSize: humanize.IBytes(uint64(max(st.RetainedB, 0))), Declared: table.Declared()}
}

// hubPath serves /sse/hubs/<hub>, /sse/hubs/<hub>/topics and
// /sse/hubs/<hub>/topics/<topic...>.
func (a AdminAPI) hubPath(w http.ResponseWriter, r *http.Request) error {
	if err := onlyGet(r); err != nil {
		return err
	}
	rest := strings.TrimPrefix(r.URL.Path, "/sse/hubs/")
	name, rest, _ := strings.Cut(rest, "/")
	app := runningApp.Load()
	var e hub.Engine
	var table *hub.TopicTable
	if app != nil {
		e, table = app.lookupHub(name)
	}
	if e == nil {
		return notFound("no hub %q in the running configuration", name)
	}
	switch {
	case rest == "":
		return writeAdminJSON(w, summarize(name, e, table))
	case rest == "topics":
		return topicPage(w, r, name, e)
	case strings.HasPrefix(rest, "topics/"):
		return topicDetail(w, r, name, e, table, strings.TrimPrefix(rest, "topics/"))
	}
	return notFound("no such view; try /sse/hubs/%s/topics", name)
}

// topicView is one topic: the engine's account, with sizes humanized.
type topicView struct {
	hub.TopicInfo
	RetainedSize string `json:"retained_size"`
}

func viewOf(info hub.TopicInfo) topicView {
	return topicView{TopicInfo: info, RetainedSize: humanize.IBytes(uint64(max(info.RetainedB, 0)))}
}

func topicPage(w http.ResponseWriter, r *http.Request, hubName string, e hub.Engine) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badAdminRequest("malformed query: %v", err)
	}
	limit := defaultTopicPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badAdminRequest("limit must be a positive number, at most %d", maxTopicPage)
		}
		limit = min(n, maxTopicPage)
	}
	infos, more := e.Topics(q.Get("after"), limit)
	out := struct {
		Hub    string      `json:"hub"`
		Topics []topicView `json:"topics"`
		Next   string      `json:"next,omitempty"` // pass as after= for the next page
	}{Hub: hubName, Topics: make([]topicView, len(infos))}
	for i, info := range infos {
		out.Topics[i] = viewOf(info)
	}
	if more && len(infos) > 0 {
		out.Next = infos[len(infos)-1].Name
	}
	return writeAdminJSON(w, out)
}

// declView is a declaration's counters, as the metrics report them.
type declView struct {
	Topic       string            `json:"topic"`
	Subscribers int64             `json:"subscribers"`
	Published   uint64            `json:"published"`
	Delivered   uint64            `json:"delivered"`
	Replayed    uint64            `json:"replayed"`
	Resets      map[string]uint64 `json:"resets"`
	Dropped     map[string]uint64 `json:"dropped"`
}

func topicDetail(w http.ResponseWriter, r *http.Request, hubName string, e hub.Engine, table *hub.TopicTable, name string) error {
	if err := hub.ValidTopicName(name); err != nil {
		return notFound("%v", err)
	}
	decl, declared := table.Decl(name)
	info, held := e.Topic(r.Context(), name)
	if !declared && !held {
		return notFound("topic %q is not declared in hub %q", name, hubName)
	}
	if !held {
		info = hub.TopicInfo{Name: name}
	}
	if declared {
		info.Declared = decl.Name
	}
	out := struct {
		topicView
		Hub         string   `json:"hub"`
		Declaration declView `json:"declaration"`
	}{topicView: viewOf(info), Hub: hubName}
	s, _ := e.Counters().Snapshot(info.Declared)
	out.Declaration = declView{Topic: info.Declared, Subscribers: s.Subscribers, Published: s.Published,
		Delivered: s.Delivered, Replayed: s.Replayed, Resets: map[string]uint64{}, Dropped: map[string]uint64{}}
	for i, reason := range hub.ResetReasons {
		out.Declaration.Resets[reason] = s.Resets[i]
	}
	for _, reason := range hub.DropReasons() {
		out.Declaration.Dropped[reason.String()] = s.Dropped[reason]
	}
	return writeAdminJSON(w, out)
}

// hubNames lists the app's hubs, sorted.
func (a *App) hubNames() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.hubs))
	for name := range a.hubs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// lookupHub returns a hub of the app and its declarations, nil if none.
func (a *App) lookupHub(name string) (hub.Engine, *hub.TopicTable) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hubs[name], a.tables[name]
}

func onlyGet(r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Message: "use GET"}
	}
	return nil
}

func notFound(format string, args ...any) error {
	return caddy.APIError{HTTPStatus: http.StatusNotFound, Message: fmt.Sprintf(format, args...)}
}

func badAdminRequest(format string, args ...any) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func writeAdminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// Interface guard
var _ caddy.AdminRouter = (*AdminAPI)(nil)
