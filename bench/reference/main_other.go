//go:build !linux

// Command reference is the bench's bare-socket SSE server (main.go); it is
// built on epoll, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "reference: Linux only (it is built on epoll)")
	os.Exit(1)
}
