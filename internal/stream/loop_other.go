//go:build !linux

package stream

import (
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// Without epoll a hijacked stream keeps its goroutine (pump) and a
// goroutine watching for the client leaving (rawStream.watch).
type loopStream struct{ fd int }

func newLoopStream(*rawStream) *loopStream { return nil }

func (*loopStream) drive(*Streamer, string, []hub.TopicRef, time.Time, func()) {}
func (*loopStream) isDriven() bool                                             { return false }
func (*loopStream) wake() bool                                                 { return false }
func (*loopStream) gather(time.Time) bool                                      { return false }
func (*loopStream) isOwned() bool                                              { return false }
func (*loopStream) detach()                                                    {}

// SayGoodbye: without the event loop every stream's goroutine says its own.
func SayGoodbye(<-chan struct{}) {}
