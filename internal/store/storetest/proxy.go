package storetest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/store"
)

// Proxy is a TCP proxy between a store and the test ClickHouse server. Cut plays a ClickHouse
// outage (every open connection is closed and new ones are dropped as soon as they arrive);
// Restore ends it. Hold plays a ClickHouse that hangs (connections stay open, nothing passes);
// Release ends it. The proxy keeps its listener through a cut, so its address never changes and
// no other process can take the port meanwhile.
type Proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	released *sync.Cond // signalled when held turns false, or on a cut or close
	cut      bool
	held     bool
	closed   bool
	conns    map[net.Conn]struct{} // both ends of every proxied connection
	wg       sync.WaitGroup
}

// NewProxy listens on 127.0.0.1:0 and forwards every connection to target (host:port). It is
// closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.released = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the host:port to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection and drops new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		reset(c)
	}
	clear(p.conns)
	p.released.Broadcast()
}

// Hold stops forwarding bytes, in both directions, on every connection, until Release: queries
// hang as with an overloaded or frozen server.
func (p *Proxy) Hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// Release forwards the held bytes and what follows.
func (p *Proxy) Release() {
	p.mu.Lock()
	p.held = false
	p.mu.Unlock()
	p.released.Broadcast()
}

// waitReleased returns once the proxy is not held (or is cut or closed).
func (p *Proxy) waitReleased() {
	p.mu.Lock()
	for p.held && !p.cut && !p.closed {
		p.released.Wait()
	}
	p.mu.Unlock()
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		reset(c)
	}
	clear(p.conns)
	p.released.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		down := p.cut || p.closed
		p.mu.Unlock()
		if down {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		reset(c)
		return
	}
	p.mu.Lock()
	if p.cut || p.closed { // cut while dialling
		p.mu.Unlock()
		reset(c)
		reset(up)
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()

	var copies sync.WaitGroup
	copies.Add(2)
	pipe := func(dst, src net.Conn) {
		defer copies.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.waitReleased()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		// One direction ended (EOF or a cut): end the other one too.
		dst.Close()
		src.Close()
	}
	go pipe(up, c)
	go pipe(c, up)
	copies.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// reset closes c with a TCP RST instead of a FIN, as a crashed server or a broken network does:
// the peer's next read or write fails at once.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// OpenProxied creates a fresh, migrated test database through a direct connection (as Open
// does) and opens it a second time through a new Proxy. Use direct to set up and read back, and
// proxied for the code under test; cut the proxy to take ClickHouse away from it. dialTimeout
// bounds connecting through the proxy (and taking a connection from the pool): keep it short so
// an outage is noticed quickly.
func OpenProxied(t testing.TB, dialTimeout time.Duration) (direct, proxied *store.Store, p *Proxy) {
	t.Helper()
	direct = Open(t)
	p = NewProxy(t, Addr())
	o := Options(t)
	o.Addr, o.Database, o.DialTimeout = p.Addr(), direct.Database(), dialTimeout
	proxied, err := store.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open the test database through the proxy: %v", err)
	}
	// Cleanups run last first: this store closes before the proxy and the database go.
	t.Cleanup(func() {
		if err := proxied.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("close proxied store: %v", err)
		}
	})
	return direct, proxied, p
}
