// Package bufpool keeps byte buffers for reuse by size class, so that a buffer taken for a need
// of n bytes has room for n and is at most about twice as large: memory budgets that count
// what requests declare still bound what their buffers hold. It is pure code, shared by the
// ingest path (request bodies, spool records).
package bufpool

import (
	"math/bits"
	"sync"
)

// Classes are powers of two from MinSize to MaxSize; a larger buffer is never kept.
const (
	minShift, maxShift = 12, 22
	MinSize            = 1 << minShift // 4 KiB
	MaxSize            = 1 << maxShift // 4 MiB
)

var pools [maxShift - minShift + 1]sync.Pool

// Get returns an empty buffer with room for at least n bytes: the pooled buffer of the
// smallest class that holds n, or a new one of that class. n above MaxSize gets a new buffer
// of n bytes.
func Get(n int) []byte {
	if n > MaxSize {
		return make([]byte, 0, n)
	}
	c := class(n)
	if b, ok := pools[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, MinSize<<c)
}

// Put keeps b for a later Get, in the largest class it fills; b must no longer be used.
func Put(b []byte) {
	if cap(b) < MinSize || cap(b) > MaxSize {
		return
	}
	c := bits.Len(uint(cap(b))) - minShift - 1 // the largest class whose size cap(b) reaches
	b = b[: 0 : MinSize<<c]
	pools[c].Put(&b)
}

// class is the smallest class whose size is at least n.
func class(n int) int {
	if n <= MinSize {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}
