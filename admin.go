package caddysse

import (
	"encoding/json"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves hub statistics on Caddy's admin endpoint:
//
//	GET /sse/stats  ->  {"hubs": {"default": {"topics": 2, "subscribers": 10, ...}}}
//
// It reads the hubs that outlive configurations, so it answers across
// reloads and shows what a drill or an operator needs: how many
// subscribers are connected, how many were dropped as slow, what is retained.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.sse", New: func() caddy.Module { return new(AdminAPI) }}
}

// Routes returns the admin routes.
func (a AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/sse/stats", Handler: caddy.AdminHandlerFunc(a.stats)}}
}

func (AdminAPI) stats(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Message: "use GET"}
	}
	out := struct {
		Hubs map[string]Stats `json:"hubs"`
	}{Hubs: make(map[string]Stats)}
	hubs.Range(func(key, value any) bool {
		h := value.(pooledHub)
		out.Hubs[h.name] = h.Stats()
		return true
	})
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// Interface guard
var _ caddy.AdminRouter = (*AdminAPI)(nil)
