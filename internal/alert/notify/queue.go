package notify

import "container/list"

// queue is a bounded FIFO of items, each holding n alerts, bounded by the alerts it holds.
// When a push takes it over capacity, the oldest items are dropped: the newest state of an
// alert is what matters. An item pushed with a key replaces the waiting item of the same key
// (the same alert, newer state), so a destination that is down for long holds each alert once.
type queue[T any] struct {
	capacity int
	items    list.List // of *entry[T], oldest first
	byKey    map[string]*list.Element
	alerts   int
}

type entry[T any] struct {
	key string
	n   int
	v   T
}

func newQueue[T any](capacity int) *queue[T] {
	return &queue[T]{capacity: capacity, byKey: map[string]*list.Element{}}
}

// push appends v (n alerts) and says how many alerts it dropped to stay within capacity. An
// item larger than the whole capacity is kept alone: callers cut items to capacity first.
func (q *queue[T]) push(key string, n int, v T) (dropped int) {
	if key != "" {
		if old, ok := q.byKey[key]; ok {
			q.remove(old)
		}
	}
	e := q.items.PushBack(&entry[T]{key: key, n: n, v: v})
	if key != "" {
		q.byKey[key] = e
	}
	q.alerts += n
	for q.alerts > q.capacity && q.items.Len() > 1 {
		front := q.items.Front()
		dropped += front.Value.(*entry[T]).n
		q.remove(front)
	}
	return dropped
}

// take removes and returns up to maxItems of the oldest items and the alerts they hold.
func (q *queue[T]) take(maxItems int) (vs []T, n int) {
	for len(vs) < maxItems && q.items.Len() > 0 {
		front := q.items.Front()
		e := front.Value.(*entry[T])
		vs = append(vs, e.v)
		n += e.n
		q.remove(front)
	}
	return vs, n
}

// clear empties the queue and says how many alerts it held.
func (q *queue[T]) clear() int {
	n := q.alerts
	q.items.Init()
	clear(q.byKey)
	q.alerts = 0
	return n
}

func (q *queue[T]) remove(e *list.Element) {
	en := q.items.Remove(e).(*entry[T])
	if en.key != "" && q.byKey[en.key] == e {
		delete(q.byKey, en.key)
	}
	q.alerts -= en.n
}
