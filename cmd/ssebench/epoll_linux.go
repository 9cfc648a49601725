package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// epollReader reads many HTTP/1.1 streams on one goroutine with its own
// epoll set: one epoll_wait for all that are ready, then one read each.
// Go's netpoller would park and wake a goroutine per stream and read
// twice per event (the second read finds nothing); on 10,000 streams that
// is CPU taken from the server being measured, on the same cores.
type epollReader struct {
	epfd  int
	subs  []*subscriber
	fds   []int
	hist  histogram
	tally *tally
	buf   []byte
}

const stopToken = ^uint64(0)

// startEpollReaders spreads subs over n readers and starts them. The
// returned stop ends them and closes every stream; it waits for them.
func startEpollReaders(subs []*subscriber, n int, t *tally) (readers []*epollReader, stop func(), err error) {
	stopFd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("eventfd: %w", err)
	}
	for i := range n {
		r := &epollReader{tally: t, buf: make([]byte, 64<<10)}
		if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
			return nil, nil, fmt.Errorf("epoll_create1: %w", err)
		}
		if err := r.watch(stopFd, stopToken); err != nil {
			return nil, nil, err
		}
		for j := i; j < len(subs); j += n {
			if err := r.adopt(subs[j]); err != nil {
				return nil, nil, err
			}
		}
		readers = append(readers, r)
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() { defer wg.Done(); r.loop() }()
	}
	stop = func() {
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(stopFd, one[:])
		wg.Wait()
		for _, r := range readers {
			for _, fd := range r.fds {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
			unix.Close(r.epfd)
		}
		unix.Close(stopFd)
	}
	return readers, stop, nil
}

// adopt takes the socket out of Go's netpoller (a duplicate descriptor
// survives the net.Conn's Close) and into this reader's epoll set.
func (r *epollReader) adopt(s *subscriber) error {
	tcp, ok := s.conn.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("epoll reader: %T is not a TCP connection", s.conn)
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(f uintptr) { fd, dupErr = unix.Dup(int(f)) }); err != nil {
		return err
	}
	if dupErr != nil {
		return fmt.Errorf("dup: %w", dupErr)
	}
	s.conn.Close() // the duplicate keeps the connection open
	s.conn, s.closer = nil, nil
	idx := len(r.subs)
	r.subs = append(r.subs, s)
	r.fds = append(r.fds, fd)
	if len(s.early) > 0 {
		r.tally.delivered.Add(r.consume(idx, s.early, time.Now().UnixNano()))
		s.early = nil
		if r.fds[idx] < 0 {
			return nil // the body ended with the headers
		}
	}
	return r.watch(fd, uint64(idx))
}

// watch adds fd edge-triggered: a stream is reported when bytes arrive,
// and read until a read comes back short. Level-triggered, epoll_wait
// would poll every reported socket again on its next call.
func (r *epollReader) watch(fd int, token uint64) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET}
	// The token is the subscriber's index, split over the two 32-bit fields.
	ev.Fd, ev.Pad = int32(uint32(token)), int32(uint32(token>>32))
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

func (r *epollReader) loop() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		now := time.Now().UnixNano()
		var got int64
		for _, ev := range events[:n] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if token == stopToken {
				return
			}
			hangup := ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
			got += r.readOne(int(token), now, hangup)
		}
		r.tally.delivered.Add(got)
	}
}

// readOne reads a ready stream until a read returns less than the buffer:
// a TCP read that does so has emptied the socket, and bytes arriving later
// raise a new edge. When the edge also reported the peer's close (hangup),
// no later edge will come: it reads on to the end, so that the close is
// seen and the subscriber counted as dropped.
func (r *epollReader) readOne(idx int, now int64, hangup bool) int64 {
	var got int64
	for r.fds[idx] >= 0 {
		n, err := unix.Read(r.fds[idx], r.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			r.drop(idx, endReset)
			break
		}
		if n == 0 {
			r.drop(idx, endClosed) // the server closed the connection
			break
		}
		got += r.consume(idx, r.buf[:n], now)
		if n < len(r.buf) && !hangup {
			break
		}
	}
	return got
}

func (r *epollReader) consume(idx int, b []byte, now int64) int64 {
	s := r.subs[idx]
	var got int64
	err := s.parser.feed(b, func(line []byte) {
		if s.deliver(line, now, &r.hist) {
			got++
		}
	})
	if errors.Is(err, errBodyEnded) {
		r.drop(idx, endEnded)
	} else if err != nil {
		r.drop(idx, endMalformed)
	}
	return got
}

// drop stops reading a stream that ended before the run did, and records
// why. The run's own stop closes the rest without calling it.
func (r *epollReader) drop(idx int, why endReason) {
	r.subs[idx].ended(why, r.tally)
	if fd := r.fds[idx]; fd >= 0 {
		_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		unix.Close(fd)
		r.fds[idx] = -1
	}
}
