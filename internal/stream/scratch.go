package stream

import (
	"sync"
	"unsafe"

	"github.com/ssehub/caddy-sse/internal/hub"
	"golang.org/x/sys/unix"
)

// writeScratch is a writer's room for one non-blocking chunk: the events
// it takes, the chunk's parts and the kernel's vector. A busy stream's
// chunk carries a hundred events and more: made per write, these were two
// allocations of kilobytes per write (golang.org/x/sys/unix.Writev builds
// its vector on the heap past 8 parts), the largest allocations of a
// publish flood; kept per stream, they were 90 bytes of every idle one. So
// writers borrow one from a pool, a few per core.
type writeScratch struct {
	evs [maxIovecs - 2]*hub.Event
	iov [maxIovecs][]byte
	vec [maxIovecs]unix.Iovec
}

var scratchPool = sync.Pool{New: func() any { return new(writeScratch) }}

func getScratch() *writeScratch { return scratchPool.Get().(*writeScratch) }

// put returns sc to the pool; used is how many events the borrower took
// into evs, cleared so that the pool pins none (writeChunk and writev
// clear the vectors they fill).
func (sc *writeScratch) put(used int) {
	clear(sc.evs[:min(used, len(sc.evs))])
	scratchPool.Put(sc)
}

// writev writes bufs to fd with one writev(2), through vec (room for the
// kernel's vector, len(bufs) entries at most), without allocating.
func writev(fd int, bufs [][]byte, vec []unix.Iovec) (int, error) {
	vec = vec[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		vec = append(vec, v)
	}
	if len(vec) == 0 {
		return 0, nil
	}
	n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vec[0])), uintptr(len(vec)))
	clear(vec) // the pool must not pin the events' bytes
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
