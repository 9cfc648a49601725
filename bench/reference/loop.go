//go:build linux

package main

import (
	"errors"
	"log"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// loop is one thread's epoll set: its listener, the connections it
// accepted, its subscribers by topic, and an inbox of events published
// anywhere. Only its own goroutine touches its connections.
type loop struct {
	srv       *server
	epfd      int
	listenFd  int
	wakeFd    int     // eventfd: events in the inbox, publishers to resume, or stop
	conns     []*conn // by file descriptor
	topics    map[string]*topic
	buf       []byte // one read buffer for every connection of the loop
	batch     []byte // frames of one topic gathered for one write each
	chunk     []byte // -chunked: a write framed as one chunk (framed)
	head      []byte // an answer being written
	behind    int    // this loop's subscribers counted in srv.behind
	paused    []*conn
	nextBeat  time.Time
	nextSweep time.Time // next look for stalled subscribers, while some are behind
	lastFlush time.Time // when the inbox was last written out
	flushAt   time.Time // when the gathered inbox is due; zero when not gathering
	stopping  atomic.Bool

	mu         sync.Mutex
	inbox      []delivery
	inboxBytes int
	spare      []delivery // the previous inbox, reused
	woken      bool       // the loop will look at its inbox without another wake-up
	urged      bool       // woken again because the inbox is full enough to go out now
}

// delivery is one published event as every loop receives it: the frame is
// shared, never written to.
type delivery struct {
	topic string
	frame []byte
}

type topic struct {
	subs []*conn
}

func newLoop(s *server, lfd int) (*loop, error) {
	l := &loop{srv: s, listenFd: lfd, epfd: -1, wakeFd: -1, topics: map[string]*topic{}, buf: make([]byte, 64<<10)}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if l.wakeFd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		unix.Close(l.epfd)
		return nil, err
	}
	for _, fd := range []int{lfd, l.wakeFd} {
		if err := l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
			l.release()
			return nil, err
		}
	}
	return l, nil
}

func (l *loop) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return unix.EpollCtl(l.epfd, op, fd, &ev)
}

// wantRead is a connection's usual interest; EPOLLOUT is added while it
// has bytes pending (interest). Level-triggered: a connection left unread
// (a paused publisher) or unwritten is reported again, so nothing is
// forgotten.
const wantRead = unix.EPOLLIN | unix.EPOLLRDHUP

// post queues an event for the loop and reports whether the loop needs a
// wake-up to see it: when it did not know of the inbox yet, and once more
// when the inbox is full enough to end a coalescing window early.
func (l *loop) post(d delivery) bool {
	l.mu.Lock()
	l.inbox = append(l.inbox, d)
	l.inboxBytes += len(d.frame)
	wake := !l.woken
	if !wake && !l.urged && l.inboxBytes >= l.highWater() {
		wake, l.urged = true, true
	}
	l.woken = true
	l.mu.Unlock()
	return wake
}

// highWater is the mark past which a subscriber is behind, and gathered
// events go out without waiting for the end of the window.
func (l *loop) highWater() int { return l.srv.cfg.maxPending / 4 }

func (l *loop) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(l.wakeFd, one[:])
}

func (l *loop) run() {
	defer l.release()
	if hb := l.srv.cfg.heartbeat; hb > 0 {
		l.nextBeat = time.Now().Add(hb)
	}
	events := make([]unix.EpollEvent, 512)
	for !l.stopping.Load() {
		n, err := unix.EpollWait(l.epfd, events, l.timeout())
		if err != nil && !errors.Is(err, unix.EINTR) {
			log.Printf("reference: epoll_wait: %v", err)
			return
		}
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			switch {
			case fd == l.listenFd:
				l.accept()
			case fd == l.wakeFd:
				var b [8]byte
				_, _ = unix.Read(l.wakeFd, b[:])
			default:
				l.ready(fd, ev.Events)
			}
		}
		// Everything published during the batch (here or on other loops)
		// goes out now, gathered: one write per subscriber and topic;
		// unless a flush went out less than -coalesce ago, in which case
		// the inbox keeps gathering until the window ends (timeout).
		if waiting, full := l.inboxState(); waiting {
			now := time.Now()
			if next := l.lastFlush.Add(l.srv.cfg.coalesce); now.Before(next) && !full {
				l.flushAt = next
			} else {
				l.flushAt, l.lastFlush = time.Time{}, now
				l.flushInbox()
			}
		}
		if len(l.paused) > 0 && l.srv.behind.Load() == 0 {
			l.resumePublishers()
		}
		l.timers()
	}
}

// inboxState reports whether events wait in the inbox, and whether they
// are enough to go out now. While they wait, other loops do not wake this
// one (woken stays set) but to say it is full: it flushes them by itself
// when the coalescing window ends.
func (l *loop) inboxState() (waiting, full bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.inbox) > 0, l.inboxBytes >= l.highWater()
}

// timeout is how long epoll_wait may sleep: until the gathered events are
// due, or the next heartbeat, and no longer than a tenth of -stall while a
// subscriber is behind, so a stalled one is closed on time.
func (l *loop) timeout() int {
	wait := time.Duration(-1)
	sooner := func(d time.Duration) {
		if wait < 0 || d < wait {
			wait = max(d, 0)
		}
	}
	if !l.flushAt.IsZero() {
		sooner(time.Until(l.flushAt))
	}
	if !l.nextBeat.IsZero() {
		sooner(time.Until(l.nextBeat))
	}
	if l.behind > 0 {
		sooner(l.srv.cfg.stall / 10)
	}
	if wait < 0 {
		return -1
	}
	return int((wait + time.Millisecond - 1) / time.Millisecond) // round up: waking early would spin
}

func (l *loop) timers() {
	if l.nextBeat.IsZero() && l.behind == 0 {
		return
	}
	now := time.Now()
	beat := !l.nextBeat.IsZero() && !now.Before(l.nextBeat)
	sweep := l.behind > 0 && !now.Before(l.nextSweep)
	if !beat && !sweep {
		return
	}
	if beat {
		l.nextBeat = now.Add(l.srv.cfg.heartbeat)
	}
	if sweep {
		l.nextSweep = now.Add(l.srv.cfg.stall / 10)
	}
	for _, t := range l.topics {
		for i := len(t.subs) - 1; i >= 0; i-- { // backwards: closing one moves the last into its place
			c := t.subs[i]
			switch {
			case c.behind && now.Sub(c.behindSince) > l.srv.cfg.stall:
				l.close(c, "stalled")
			case beat:
				l.sendEvent(c, l.framed(heartbeat))
			}
		}
	}
}

var heartbeat = []byte(":\n\n")

func (l *loop) accept() {
	for {
		fd, _, err := unix.Accept4(l.listenFd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				log.Printf("reference: accept: %v", err)
			}
			return
		}
		// Events are small writes that must leave at once: no Nagle.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if err := l.ctl(unix.EPOLL_CTL_ADD, fd, wantRead); err != nil {
			unix.Close(fd)
			continue
		}
		for fd >= len(l.conns) {
			l.conns = append(l.conns, make([]*conn, len(l.conns)+64)...)
		}
		l.conns[fd] = &conn{fd: fd}
	}
}

func (l *loop) ready(fd int, events uint32) {
	c := l.conns[fd]
	if c == nil {
		return
	}
	if events&unix.EPOLLOUT != 0 {
		l.writable(c)
		if c.closed {
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.readable(c, events&(unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// readable reads once what the connection sent: a subscriber's bytes are
// dropped (it only has to be noticed when it closes), anything else is
// requests. Once: a publisher that keeps its socket full would otherwise
// be read on and on before any of it is written out, and no subscriber
// would ever look behind; level-triggered, the rest is reported again
// after this batch's flush. A publisher is paused instead while
// subscribers are behind, unless it hung up (a hang-up is reported even to
// a paused connection, and would be again and again).
func (l *loop) readable(c *conn, hangup bool) {
	if c.publisher && !hangup && l.srv.behind.Load() > 0 {
		l.pause(c)
		return
	}
	n, err := unix.Read(c.fd, l.buf)
	switch {
	case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
	case err != nil:
		l.close(c, "reset")
	case n == 0:
		l.close(c, "closed by peer")
	case c.sub == nil:
		l.received(c, l.buf[:n])
	}
}

// writable sends what a connection has pending.
func (l *loop) writable(c *conn) {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil {
			l.close(c, "reset")
			return
		}
		c.out = c.out[n:]
	}
	c.out = nil
	if c.behind {
		c.behind = false
		l.behind--
		l.srv.markCaughtUp()
	}
	if c.closeWhenFlushed {
		l.close(c, "done")
		return
	}
	c.armed = false
	_ = l.ctl(unix.EPOLL_CTL_MOD, c.fd, l.interest(c))
}

// send writes p to c, or as much as the socket takes, keeping the rest.
// It does not bound c's pending bytes: sendEvent does for subscribers.
func (l *loop) send(c *conn, p []byte) {
	if len(c.out) == 0 {
		for {
			n, err := unix.Write(c.fd, p)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				l.close(c, "reset")
				return
			}
			if err == nil {
				p = p[n:]
			}
			break
		}
		if len(p) == 0 {
			if c.closeWhenFlushed {
				l.close(c, "done")
			}
			return
		}
	}
	c.out = append(c.out, p...)
	if !c.armed {
		c.armed = true
		_ = l.ctl(unix.EPOLL_CTL_MOD, c.fd, l.interest(c))
	}
}

// sendEvent writes frames to a subscriber. Past a quarter of -max-pending
// the subscriber is behind and publishers wait for it; a subscriber whose
// pending passes -max-pending anyway (events already on their way when it
// fell behind) is closed rather than kept growing.
func (l *loop) sendEvent(c *conn, p []byte) {
	l.send(c, p)
	switch {
	case c.closed:
	case len(c.out) > l.srv.cfg.maxPending:
		l.close(c, "pending over max-pending")
	case !c.behind && len(c.out) > l.srv.cfg.maxPending/4:
		c.behind, c.behindSince = true, time.Now()
		l.behind++
		l.srv.markBehind()
	}
}

// flushInbox writes the events published since the last flush to this
// loop's subscribers: each topic's frames gathered into one slice (or the
// one frame as it is), one write per subscriber.
func (l *loop) flushInbox() {
	l.mu.Lock()
	ds := l.inbox
	l.inbox, l.spare = l.spare, nil // spare is only ever touched here
	l.inboxBytes, l.woken, l.urged = 0, false, false
	l.mu.Unlock()
	for i := range ds {
		if ds[i].frame == nil {
			continue // gathered with an earlier frame of its topic
		}
		t := l.topics[ds[i].topic]
		if t == nil {
			continue
		}
		p, gathered := ds[i].frame, false
		for j := i + 1; j < len(ds); j++ {
			if ds[j].frame != nil && ds[j].topic == ds[i].topic {
				if !gathered {
					p, gathered = append(l.batch[:0], p...), true
				}
				p = append(p, ds[j].frame...)
				ds[j].frame = nil
			}
		}
		if gathered {
			l.batch = p[:0] // keep the grown buffer for the next flush
		}
		p = l.framed(p)
		for k := len(t.subs) - 1; k >= 0; k-- { // backwards: closing one moves the last into its place
			l.sendEvent(t.subs[k], p)
		}
	}
	clear(ds) // the frames are garbage once written
	l.spare = ds[:0]
}

// pause stops reading a publisher while subscribers are behind: its
// requests wait in its socket, and it in turn waits for their answers.
func (l *loop) pause(c *conn) {
	if c.paused {
		return
	}
	c.paused = true
	l.paused = append(l.paused, c)
	_ = l.ctl(unix.EPOLL_CTL_MOD, c.fd, l.interest(c))
}

func (l *loop) resumePublishers() {
	for _, c := range l.paused {
		if !c.closed {
			c.paused = false
			_ = l.ctl(unix.EPOLL_CTL_MOD, c.fd, l.interest(c))
		}
	}
	clear(l.paused)
	l.paused = l.paused[:0]
}

func (l *loop) interest(c *conn) uint32 {
	var ev uint32 = wantRead
	if c.paused {
		ev = 0 // hang-ups and errors are reported all the same
	}
	if c.armed {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// subscribe makes c a subscriber of name.
func (l *loop) subscribe(c *conn, name string) {
	t := l.topics[name]
	if t == nil {
		t = &topic{}
		l.topics[name] = t
	}
	c.sub, c.topicName, c.slot = t, name, len(t.subs)
	t.subs = append(t.subs, c)
}

// close closes a connection and forgets it; the kernel drops it from the
// epoll set with its last descriptor.
func (l *loop) close(c *conn, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	unix.Close(c.fd)
	l.conns[c.fd] = nil
	if c.behind {
		c.behind = false
		l.behind--
		l.srv.markCaughtUp()
	}
	if t := c.sub; t != nil {
		last := t.subs[len(t.subs)-1]
		t.subs[c.slot], last.slot = last, c.slot
		t.subs[len(t.subs)-1] = nil
		t.subs = t.subs[:len(t.subs)-1]
		if len(t.subs) == 0 {
			delete(l.topics, c.topicName)
		}
		if hook := l.srv.cfg.onClose; hook != nil {
			hook(reason)
		}
	}
}

// release closes every descriptor the loop holds, when it stops.
func (l *loop) release() {
	for _, c := range l.conns {
		if c != nil && !c.closed {
			c.closed = true
			unix.Close(c.fd)
		}
	}
	for _, fd := range []int{l.listenFd, l.wakeFd, l.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// framed is p as one chunk with -chunked (built once, written to every
// subscriber unchanged), else p itself.
func (l *loop) framed(p []byte) []byte {
	if !l.srv.cfg.chunked {
		return p
	}
	b := strconv.AppendInt(l.chunk[:0], int64(len(p)), 16)
	b = append(b, "\r\n"...)
	b = append(b, p...)
	b = append(b, "\r\n"...)
	l.chunk = b[:0]
	return b
}
