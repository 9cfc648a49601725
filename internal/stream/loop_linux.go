//go:build linux

package stream

import (
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// An idle subscriber is the main workload of an SSE hub (notifications,
// dashboards, presence), and a goroutine per stream was most of what one
// cost: its stack, and the goroutine watching for the client leaving. So
// once a hijacked HTTP/1.1 stream has sent its replay its goroutine ends
// (loop_stream.go). What it waited for is now:
//   - the client leaving, or sending bytes it must not, and room to write
//     in a full socket: an event loop watching the socket with epoll;
//   - its heartbeat, the end of its coalesce window and its write timeout:
//     a place in a timer wheel (wheel.go: two links and a tick, no
//     goroutine and no runtime timer of its own);
//   - events to write: the publisher writes them itself without blocking
//     (rawStream.writeNow), as before; what it cannot write now (a coalesce
//     window is open) waits for the wheel.
//
// So an idle stream is a socket, a subscription and a few hundred bytes of
// state. The loop sees little: a client leaving, a full socket draining.
// Busy paths stay on Go's own scheduler: a wake-up through an eventfd and
// epoll_wait per delivery cost more than the goroutine it saved.

// eventLoop is one epoll instance and the goroutine that waits on it.
type eventLoop struct {
	epfd int

	mu      sync.Mutex
	streams map[int32]*loopStream // by descriptor, registered ones
}

var (
	loopOnce sync.Once
	theLoop  atomic.Pointer[eventLoop] // nil: not started, or epoll is unavailable (streams keep their goroutines)
)

// loopFor returns the event loop, starting it on first use; nil when it
// cannot run here.
func loopFor() *eventLoop {
	loopOnce.Do(func() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		l := &eventLoop{epfd: epfd, streams: make(map[int32]*loopStream)}
		theLoop.Store(l)
		go l.run()
	})
	return theLoop.Load()
}

// watchEvents is what a stream's socket is watched for: the client closing
// its side, or sending anything (readable); EPOLLOUT is added while bytes
// wait for room.
const watchEvents = unix.EPOLLIN | unix.EPOLLRDHUP

// add registers ls's socket: from now on the loop closes ls's gone channel
// when the client leaves or sends anything.
func (l *eventLoop) add(ls *loopStream) error {
	l.mu.Lock()
	l.streams[int32(ls.fd)] = ls
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: watchEvents, Fd: int32(ls.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ls.fd, &ev); err != nil {
		l.mu.Lock()
		delete(l.streams, int32(ls.fd))
		l.mu.Unlock()
		return err
	}
	return nil
}

// remove forgets ls's socket; it must run before the socket is closed, so
// that its descriptor, once reused, is not taken for ls's.
func (l *eventLoop) remove(ls *loopStream) {
	l.mu.Lock()
	if l.streams[int32(ls.fd)] == ls {
		delete(l.streams, int32(ls.fd))
	}
	l.mu.Unlock()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ls.fd, nil) // ENOENT: already removed
}

// rekey moves ls's registration to its descriptor fd (loopStream.own),
// and forgets the one it had.
func (l *eventLoop) rekey(ls *loopStream, fd int) error {
	ev := unix.EpollEvent{Events: watchEvents, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	l.mu.Lock()
	if l.streams[int32(ls.fd)] == ls {
		delete(l.streams, int32(ls.fd))
	}
	l.streams[int32(fd)] = ls
	l.mu.Unlock()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ls.fd, nil)
	return nil
}

// watchWritable adds or removes EPOLLOUT for ls's socket.
func (l *eventLoop) watchWritable(ls *loopStream, on bool) {
	events := uint32(watchEvents)
	if on {
		events |= unix.EPOLLOUT
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(ls.fd)}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, ls.fd, &ev)
}

// streamsStoppingWith is every registered stream of a streamer whose
// Stopping is stopping: its configuration is stopping, and each says
// goodbye.
func (l *eventLoop) streamsStoppingWith(stopping <-chan struct{}) []*loopStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	var mine []*loopStream
	for _, ls := range l.streams {
		if h := ls.h.Load(); h != nil && h.Stopping == stopping {
			mine = append(mine, ls)
		}
	}
	return mine
}

// SayGoodbye has every stream the event loop serves for a configuration
// that stops with stopping (Streamer.Stopping, closed) say goodbye, and
// returns once they have: a process exiting right after its configuration
// stops would otherwise close them without their reconnect hint. It
// never blocks on a client: each goodbye is one non-blocking write.
func SayGoodbye(stopping <-chan struct{}) {
	l := theLoop.Load()
	if l == nil || stopping == nil {
		return
	}
	for _, ls := range l.streamsStoppingWith(stopping) {
		ls.service()
	}
}

func (l *eventLoop) lookup(fd int32) *loopStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[fd]
}

// run is the loop: wait for sockets, then service what they concern.
func (l *eventLoop) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic("sse event loop: epoll_wait: " + err.Error()) // a bug: the descriptor is ours
		}
		for _, ev := range events[:max(n, 0)] {
			ls := l.lookup(ev.Fd)
			if ls == nil {
				continue // removed since epoll_wait returned
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				ls.readable()
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				ls.service()
			}
		}
	}
}
