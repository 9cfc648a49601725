package main

import (
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A server that writes its last bytes and closes at once can have both
// arrive before the reader wakes: one edge reports data and the close
// together, and no later edge comes. The reader must still see the close
// and count the subscriber as dropped (it once stopped at the short read
// and never noticed).
func TestEpollReaderSeesCloseThatCameWithData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(srv, "data: 0 0 %d xxxx\n\n", time.Now().UnixNano())
	srv.Close()
	awaitHangup(t, conn.(*net.TCPConn))

	s := &subscriber{next: make([]uint64, 1), conn: conn}
	var tl tally
	_, stop, err := startEpollReaders([]*subscriber{s}, 1, &tl)
	if err != nil {
		t.Fatal(err)
	}
	// The tally has no event to await: poll it, with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	for tl.dropped.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if s.end != endClosed || tl.dropped.Load() != 1 || s.received != 1 {
		t.Fatalf("end %v, dropped %d, received %d: want closed, 1, 1", s.end, tl.dropped.Load(), s.received)
	}
}

// awaitHangup waits until the peer's close (and so the data sent before
// it) has reached conn, without reading.
func awaitHangup(t *testing.T, conn *net.TCPConn) {
	t.Helper()
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var pollErr error
	var got int16
	if err := raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		for {
			_, pollErr = unix.Poll(fds, 10_000)
			if pollErr != unix.EINTR {
				break
			}
		}
		got = fds[0].Revents
	}); err != nil {
		t.Fatal(err)
	}
	if pollErr != nil || got&unix.POLLRDHUP == 0 {
		t.Fatalf("the close did not arrive: %v, revents %#x", pollErr, got)
	}
}
