package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
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

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	pubClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	rcs := make([]*drillReconnectingClient, clients)
	var wg sync.WaitGroup
	for i := range rcs {
		rcs[i] = &drillReconnectingClient{url: streamURL, hc: hc}
		s, err := drillTrySubscribe(ctx, t, hc, streamURL, "Last-Event-ID: "+startID)
		if err == nil {
			err = s.drillAwaitOpening(eventWait)
		}
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rcs[i].run(ctx, t, s)
		}()
	}

	// post publishes one update, resending it when a reload resets the
	// connection before the request was read (see TestDrillReloadStorm).
	var pubRetries atomic.Int64
	post := func(f url.Values, token string) error {
		for attempt := 0; ; attempt++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hub, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := pubClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("publish %s: %s", f.Get("data"), resp.Status)
				}
				return nil
			}
			if attempt == 5 || ctx.Err() != nil {
				return fmt.Errorf("publish %s: %v", f.Get("data"), err)
			}
			pubRetries.Add(1)
		}
	}

	var published atomic.Int64
	progress := make(chan struct{}, 1)
	stop := make(chan struct{})
	pubDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				pubDone <- nil
				return
			default:
			}
			// Book 2's private update: no subscriber may see it.
			if i%5 == 0 {
				if err := post(url.Values{"topic": {mercureBook2}, "data": {"forbidden"}, "private": {"on"}}, pubToken); err != nil {
					pubDone <- err
					return
				}
			}
			if err := post(form(i, seqData(i)), pubToken); err != nil {
				pubDone <- err
				return
			}
			published.Add(1)
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	awaitPublished := func(n int64) {
		t.Helper()
		target := published.Load() + n
		deadline := time.NewTimer(eventWait)
		defer deadline.Stop()
		for published.Load() < target {
			select {
			case <-progress:
			case err := <-pubDone:
				t.Fatalf("publisher stopped: %v", err)
			case <-deadline.C:
				t.Fatalf("publisher made no progress: %d published", published.Load())
			}
		}
	}

	var reloadTimes []time.Duration
	for r := 1; r <= reloads; r++ {
		awaitPublished(20)
		t0 := time.Now()
		c.reload(mercureReloadConfig(r))
		reloadTimes = append(reloadTimes, time.Since(t0))
	}
	awaitPublished(20)
	close(stop)
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	total := int(published.Load())
	mustMercurePublish(t, hub, pubToken, form(total, "end"))

	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(60 * time.Second):
		cancel()
		<-allDone
		t.Fatalf("clients did not all receive the end marker within 60s")
	}
	t.Logf("%d reloads (each %s) while %d updates were published; %d publishes resent after a connection reset",
		reloads, drillDurations(reloadTimes), total, pubRetries.Load())

	checkReconnected(t, rcs, total, "updates")
	if lines := drillErrorLines(c.logs()); len(lines) > 0 {
		t.Errorf("caddy logged errors during the drill:\n%s", strings.Join(lines, "\n"))
	}
}
