package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// mercureReloadSite is reloaded with its heartbeat alternating, so that
// every reload is a real one. The ring keeps everything the drill
// publishes.
const mercureReloadSite = `
http://127.0.0.1:{PORT} {
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
		replay 100000
		replay_size 64MiB
		heartbeat HEARTBEAT
	}
}
`

func mercureReloadConfig(i int) string {
	return strings.Replace(mercureReloadSite, "HEARTBEAT", []string{"1s", "2s"}[i%2], 1)
}

// TestMercureReloadDrill: subscribers with a token (in the query, so the
// drill's reconnecting client carries it on every reconnect) stay through
// five reloads while a publisher publishes private updates they may read,
// half with the publisher's ids and half with the hub's, and private
// updates they may not read. Each stream either stays or ends with a
// retry: hint; each subscriber resumes with Last-Event-ID and must end
// with every update it may read exactly once, in order, and no other.
func TestMercureReloadDrill(t *testing.T) {
	const (
		clients = 5
		reloads = 5
	)
	c := startCaddy(t, mercureReloadConfig(0))
	hub := c.base + "/.well-known/mercure"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	pubToken := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	subToken, _ := mercureBookTokens(t, mercureSubKey)
	topic := func(i int) string { return mercureBook1 + "?v=" + fmt.Sprint(i%3) }
	// The token allows book 1 exactly: the updates use alternate topics,
	// the first (canonical) one varying, book 1 among the alternates.
	form := func(i int, data string) url.Values {
		f := url.Values{"topic": {topic(i), mercureBook1}, "data": {data}, "private": {"on"}}
		if i%2 == 0 {
			f.Set("id", fmt.Sprintf("urn:drill:%d", i))
		}
		return f
	}
	streamURL := hub + "?topic=" + url.QueryEscape(mercureBookTmpl) + "&authorization=" + subToken

	// Every client resumes from the start marker even on its first
	// connect, so nothing published before it is ready is lost.
	startID := mustMercurePublish(t, hub, pubToken, form(1, "start"))

	var pubRetries atomic.Int64
	post := func(f url.Values) error {
		return drillPost(ctx, &pubRetries, func() *http.Request {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hub, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+pubToken)
			return req
		})
	}
	rcs, total, reloadTimes := runReloadStorm(t, ctx, cancel, reloadStorm{
		clients: clients, reloads: reloads, every: 20,
		streamURL: streamURL, startID: startID,
		publish: func(i int) error {
			// Book 2's private update: no subscriber may see it.
			if i%5 == 0 {
				if err := post(url.Values{"topic": {mercureBook2}, "data": {"forbidden"}, "private": {"on"}}); err != nil {
					return err
				}
			}
			return post(form(i, seqData(i)))
		},
		reload: func(r int) { c.reload(mercureReloadConfig(r)) },
		end:    func() { mustMercurePublish(t, hub, pubToken, form(-1, "end")) },
	})
	t.Logf("%d reloads (each %s) while %d updates were published; %d publishes resent after a connection reset",
		reloads, drillDurations(reloadTimes), total, pubRetries.Load())

	checkReconnected(t, rcs, total, "updates")
	if lines := drillErrorLines(c.logs()); len(lines) > 0 {
		t.Errorf("caddy logged errors during the drill:\n%s", strings.Join(lines, "\n"))
	}
}
