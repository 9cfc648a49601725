//go:build linux

package stream

import (
	"container/heap"
	"errors"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// An idle subscriber is the main workload of an SSE hub (notifications,
// dashboards, presence), and a goroutine per stream was most of what one
// cost: its stack, and the goroutine watching for the client leaving. So
// once a hijacked HTTP/1.1 stream has sent its replay it is handed to an
// event loop and its goroutine ends (loop_stream.go). The loop watches the
// socket with epoll (the client leaving, or sending bytes it must not) and
// keeps the stream's times in one heap (heartbeat, coalesce window, write
// timeout): an idle stream is a socket, a subscription and a few hundred
// bytes of state.
//
// Writes stay where they were: a publisher writes an idle stream's events
// without blocking (rawStream.writeNow). What it cannot write (a coalesce
// window is open, the socket is full) it hands to the loop, which writes
// once the window ends or the socket drains (EPOLLOUT). There are as many
// loops as cores; a stream stays on one.

// eventLoop is one epoll instance and the goroutine that waits on it.
type eventLoop struct {
	epfd   int
	wakeFd int // an eventfd: schedule wakes the loop through it

	mu      sync.Mutex
	streams map[int32]*loopStream // by descriptor, registered ones
	todo    []*loopStream         // scheduled: to be serviced on the next turn
	spare   []*loopStream
	woken   bool // a wake-up is pending in wakeFd

	timers timerHeap // the loop goroutine's alone
}

var (
	loopsOnce sync.Once
	loops     []*eventLoop // nil: epoll is unavailable, streams keep their goroutine
)

// loopFor returns the event loop a stream on fd is served by, starting the
// loops on first use; nil when they cannot run here.
func loopFor(fd int) *eventLoop {
	loopsOnce.Do(startLoops)
	if len(loops) == 0 {
		return nil
	}
	return loops[fd%len(loops)]
}

func startLoops() {
	n := runtime.GOMAXPROCS(0)
	for range n {
		l, err := newEventLoop()
		if err != nil {
			return // keep what started; none: goroutines as before
		}
		loops = append(loops, l)
		go l.run()
	}
}

func newEventLoop() (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakeFd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakeFd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakeFd)
		return nil, err
	}
	return &eventLoop{epfd: epfd, wakeFd: wakeFd, streams: make(map[int32]*loopStream)}, nil
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

// watchWritable adds or removes EPOLLOUT for ls's socket.
func (l *eventLoop) watchWritable(ls *loopStream, on bool) {
	events := uint32(watchEvents)
	if on {
		events |= unix.EPOLLOUT
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(ls.fd)}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, ls.fd, &ev)
}

// schedule has the loop service ls on its next turn; any goroutine may
// call it, the hub's lock held included: it never blocks for long.
func (l *eventLoop) schedule(ls *loopStream) {
	if ls.scheduled.Swap(true) {
		return // already on the list
	}
	l.mu.Lock()
	l.todo = append(l.todo, ls)
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wakeFd, one[:])
	}
}

// scheduleAll schedules every stream of the streamer h: its configuration
// is stopping, and each says goodbye.
func (l *eventLoop) scheduleAll(h *Streamer) {
	l.mu.Lock()
	var mine []*loopStream
	for _, ls := range l.streams {
		if ls.h == h {
			mine = append(mine, ls)
		}
	}
	l.mu.Unlock()
	for _, ls := range mine {
		l.schedule(ls)
	}
}

func (l *eventLoop) lookup(fd int32) *loopStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[fd]
}

// run is the loop: wait for sockets, wake-ups and the earliest time due,
// then service what they concern.
func (l *eventLoop) run() {
	events := make([]unix.EpollEvent, 256)
	var buf [8]byte
	for {
		n, err := unix.EpollWait(l.epfd, events, l.timers.waitMillis(time.Now()))
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic("sse event loop: epoll_wait: " + err.Error()) // a bug: the descriptor is ours
		}
		now := time.Now()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(l.wakeFd) {
				_, _ = unix.Read(l.wakeFd, buf[:])
				continue
			}
			ls := l.lookup(ev.Fd)
			if ls == nil {
				continue // removed since epoll_wait returned
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				ls.readable()
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				ls.service(now)
			}
		}
		l.mu.Lock()
		todo := l.todo
		l.todo, l.spare = l.spare[:0], nil
		l.woken = false
		l.mu.Unlock()
		for _, ls := range todo {
			ls.scheduled.Store(false)
			ls.service(now)
		}
		clear(todo)
		l.mu.Lock()
		if l.spare == nil {
			l.spare = todo[:0]
		}
		l.mu.Unlock()
		l.timers.fire(now)
	}
}

// timerHeap orders streams by the time they next need the loop (their
// heartbeat, the end of their coalesce window, their write timeout). A
// stream is in it at most once for a given time: an entry whose time is
// no longer the stream's wake time is stale and skipped.
type timerHeap []timerEntry

type timerEntry struct {
	at time.Time
	ls *loopStream
}

func (t timerHeap) Len() int           { return len(t) }
func (t timerHeap) Less(i, j int) bool { return t[i].at.Before(t[j].at) }
func (t timerHeap) Swap(i, j int)      { t[i], t[j] = t[j], t[i] }
func (t *timerHeap) Push(x any)        { *t = append(*t, x.(timerEntry)) }
func (t *timerHeap) Pop() any {
	old := *t
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*t = old[:len(old)-1]
	return e
}

// wake makes the loop service ls at (or soon after) at, unless it already
// will by then. The loop goroutine only.
func (t *timerHeap) wake(ls *loopStream, at time.Time) {
	if !ls.wakeAt.IsZero() && !ls.wakeAt.After(at) {
		return
	}
	ls.wakeAt = at
	heap.Push(t, timerEntry{at: at, ls: ls})
}

// waitMillis is epoll_wait's timeout: until the earliest entry, rounded
// up, or -1 (none).
func (t *timerHeap) waitMillis(now time.Time) int {
	if len(*t) == 0 {
		return -1
	}
	d := (*t)[0].at.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// fire services the streams whose time has come.
func (t *timerHeap) fire(now time.Time) {
	for len(*t) > 0 && !(*t)[0].at.After(now) {
		e := heap.Pop(t).(timerEntry)
		if !e.ls.wakeAt.Equal(e.at) {
			continue // stale: the stream was rescheduled
		}
		e.ls.wakeAt = time.Time{}
		e.ls.service(now)
	}
}
