//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	listen     string
	loops      int
	maxPending int
	stall      time.Duration
	heartbeat  time.Duration
	coalesce   time.Duration
	// chunked frames the stream with HTTP/1.1 chunked encoding, as
	// caddy-sse does (one chunk per write); off, the body ends with the
	// connection.
	chunked bool
	// onClose, when set (tests), hears every subscriber the server closes
	// and why, on the loop's goroutine.
	onClose func(reason string)
}

// server is the loops and what they share: the id counter and the order in
// which events reach them.
type server struct {
	cfg   config
	addr  string
	loops []*loop
	wg    sync.WaitGroup

	// mu makes "take the next id" and "hand the event to every loop" one
	// step, so every loop receives events in id order even when two loops
	// publish at once.
	mu     sync.Mutex
	lastID uint64

	// behind counts subscribers, on all loops, whose pending bytes passed
	// the high-water mark. While it is above 0 no loop reads a publisher.
	behind atomic.Int64
}

func start(cfg config) (*server, error) {
	if cfg.loops < 1 {
		return nil, errors.New("-loops must be at least 1")
	}
	if cfg.maxPending < 4<<10 {
		return nil, errors.New("-max-pending must be at least 4096 bytes")
	}
	if cfg.stall <= 0 {
		return nil, errors.New("-stall must be positive")
	}
	if cfg.coalesce < 0 || cfg.heartbeat < 0 {
		return nil, errors.New("-coalesce and -heartbeat cannot be negative")
	}
	ap, err := netip.ParseAddrPort(cfg.listen)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("-listen %q: want an IPv4 host:port", cfg.listen)
	}
	s := &server{cfg: cfg}
	port := int(ap.Port())
	for range cfg.loops {
		// One listener per loop on the same port (SO_REUSEPORT): the
		// kernel spreads connections over them, so no loop hands a
		// connection to another. The first fixes the port when 0 was asked.
		lfd, bound, err := listen(ap.Addr().As4(), port)
		if err != nil {
			s.closeAll()
			return nil, err
		}
		port = bound
		l, err := newLoop(s, lfd)
		if err != nil {
			unix.Close(lfd)
			s.closeAll()
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	s.addr = netip.AddrPortFrom(ap.Addr(), uint16(port)).String()
	for _, l := range s.loops {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); l.run() }()
	}
	return s, nil
}

func listen(ip [4]byte, port int) (fd, bound int, err error) {
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("socket: %w", err)
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("setsockopt: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ip, Port: port}); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("bind %v:%d: %w", netip.AddrFrom4(ip), port, err)
	}
	// 10,000 subscribers connect 500 at a time: a deep backlog.
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, sa.(*unix.SockaddrInet4).Port, nil
}

// publish gives an event its id and hands its one encoded frame to every
// loop; from is the loop that read it, which flushes its inbox when its
// current batch of events is done and so needs no wake-up.
func (s *server) publish(from *loop, topic string, event, data []byte) uint64 {
	s.mu.Lock()
	s.lastID++
	id := s.lastID
	frame := appendFrame(make([]byte, 0, len(data)+len(event)+32), id, event, data)
	var wake [64]*loop
	woken := wake[:0]
	for _, l := range s.loops {
		if l.post(delivery{topic, frame}) && l != from {
			woken = append(woken, l)
		}
	}
	s.mu.Unlock()
	for _, l := range woken {
		l.wake()
	}
	return id
}

// markBehind and markCaughtUp count the subscribers holding publishers
// back. The last one to catch up wakes every loop, so each resumes the
// publishers it paused.
func (s *server) markBehind() { s.behind.Add(1) }

func (s *server) markCaughtUp() {
	if s.behind.Add(-1) == 0 {
		for _, l := range s.loops {
			l.wake()
		}
	}
}

// close stops the loops and closes every socket.
func (s *server) close() {
	for _, l := range s.loops {
		l.stopping.Store(true)
		l.wake()
	}
	s.wg.Wait()
}

// closeAll releases what start made before it failed.
func (s *server) closeAll() {
	for _, l := range s.loops {
		l.release()
	}
}
