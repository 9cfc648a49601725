//go:build !linux

package main

import (
	"errors"
	"sync/atomic"
)

type epollReader struct{ hist histogram }

func startEpollReaders(subs []*subscriber, n int, counter *atomic.Int64) ([]*epollReader, func(), error) {
	return nil, nil, errors.New("-reader epoll needs Linux; use -reader goroutine")
}
