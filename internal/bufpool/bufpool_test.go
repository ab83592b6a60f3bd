package bufpool

import "testing"

// A buffer taken for n bytes holds n and at most twice n (above the smallest class), whatever
// sizes were put back before.
func TestGetFitsTheNeed(t *testing.T) {
	for _, size := range []int{MinSize, 3 * MinSize, MaxSize, 1 << 20, 5000} {
		Put(make([]byte, 17, size))
	}
	for _, n := range []int{0, 1, MinSize - 1, MinSize, MinSize + 1, 100_000, 1 << 20, (1 << 20) + 1, MaxSize} {
		b := Get(n)
		if len(b) != 0 || cap(b) < n || (n > MinSize && cap(b) >= 2*n) || (n <= MinSize && cap(b) != MinSize) {
			t.Errorf("Get(%d): len %d cap %d", n, len(b), cap(b))
		}
		Put(b)
	}
	if b := Get(MaxSize + 1); cap(b) != MaxSize+1 {
		t.Errorf("Get(MaxSize+1): cap %d", cap(b))
	}
}

// A grown buffer goes back in the class it fills, so that it is handed out only for needs it
// holds.
func TestPutKeepsAGrownBufferInTheClassItFills(t *testing.T) {
	b := append(Get(10), make([]byte, 3*MinSize)...) // grown past its class
	c := cap(b)
	Put(b)
	for range 100 { // sync.Pool may drop it; each Get must still fit
		got := Get(2 * MinSize)
		if cap(got) < 2*MinSize || cap(got) >= 4*MinSize {
			t.Fatalf("Get(2*MinSize) after putting a buffer of %d: cap %d", c, cap(got))
		}
	}
}
