// Package claimtest gives tests a real NATS server with JetStream: Debian's nats-server,
// started on a free loopback port with its own store folder, which a test can stop and start
// again on the same port and store (an outage of the claims).
package claimtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// WaitLimit bounds the wait for the server to answer. It is no timed assertion: the wait ends
// as soon as the port answers, and the limit only turns a hang into a failure that says why.
const WaitLimit = 30 * time.Second

// NATS is a running nats-server.
type NATS struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// Start runs nats-server with JetStream on a free loopback port until the test ends.
func Start(t testing.TB) *NATS {
	t.Helper()
	bin := ""
	for _, name := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "nats-server"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatal("nats-server is not installed, and the cluster tests claim events on a real one: " +
			"install it with `apt-get install nats-server` (scripts/test.sh does)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n := &NATS{t: t, bin: bin, dir: t.TempDir(), port: port}
	n.StartAgain()
	t.Cleanup(n.Stop)
	return n
}

// URL is the server's nats:// URL.
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// Stop stops the server (SIGTERM, then waits); its store stays for StartAgain.
func (n *NATS) Stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	_ = n.cmd.Wait()
	n.cmd = nil
}

// StartAgain starts the server on its port and store, and waits until it accepts connections.
func (n *NATS) StartAgain() {
	n.t.Helper()
	if n.cmd != nil {
		return
	}
	cmd := exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", filepath.Join(n.dir, "store"))
	log, err := os.Create(filepath.Join(n.dir, fmt.Sprintf("nats-%d.log", time.Now().UnixNano())))
	if err != nil {
		n.t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	n.cmd = cmd
	deadline := time.Now().Add(WaitLimit)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(n.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server does not answer on port %d after %s (log in %s)", n.port, WaitLimit, n.dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
