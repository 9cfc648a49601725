//go:build !linux

package main

import "errors"

type epollReader struct{ hist histogram }

func startEpollReaders(subs []*subscriber, n int, t *tally) ([]*epollReader, func(), error) {
	return nil, nil, errors.New("-reader epoll needs Linux; use -reader goroutine")
}
