// Package spooltest damages and confines spools for tests: a record whose bytes are intact but
// whose events cannot be decoded, and a spool on a disk small enough to fill; and waits for
// what a spool's reader does in the background.
package spooltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// headerBytes is the size of a record's header, as internal/spool's package comment lays it
// out: length, CRC-32C (of what follows it), count, received; then the payload, whose first
// byte is the codec's version.
const headerBytes = 20

// PoisonRecord rewrites the n-th record (from 0, in segment order) of the closed spool in dir
// so that it cannot be decoded: its payload's version byte becomes one no Truthboard wrote,
// as a spool written by a later version would hold, and its CRC is computed again, so the
// record passes the spool's check at Open and fails only at decoding.
func PoisonRecord(t testing.TB, dir string, n int) {
	t.Helper()
	segments, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range segments { // the names are zero-padded: Glob's order is the spool's
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+headerBytes <= len(data); {
			size := int(binary.LittleEndian.Uint32(data[off:]))
			if n == 0 {
				data[off+headerBytes] = 0xEE
				crc := crc32.Checksum(data[off+8:off+headerBytes+size], crc32.MakeTable(crc32.Castagnoli))
				binary.LittleEndian.PutUint32(data[off+4:], crc)
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				return
			}
			n--
			off += headerBytes + size
		}
	}
	t.Fatalf("the spool in %s has fewer records than asked for", dir)
}

const smallDiskEnv = "TRUTHBOARD_TEST_SMALL_DISK"

// SmallDisk runs test with a folder on a file system of size bytes (a tmpfs), to see what a
// full disk does. Mounting needs a privilege tests do not have: SmallDisk runs the test binary
// again, for this test alone, in new user and mount namespaces (unshare --user
// --map-root-user --mount, from util-linux), where it may mount a tmpfs that vanishes with the
// process. Call it first in the test, as what comes before it runs in both processes. The test
// is skipped where the system allows no user namespaces.
func SmallDisk(t *testing.T, size int64, test func(t *testing.T, dir string)) {
	if os.Getenv(smallDiskEnv) != "" {
		dir := filepath.Join(t.TempDir(), "disk")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
			t.Fatalf("mount a tmpfs of %d bytes: %v", size, err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
		test(t, dir)
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare command (util-linux) to mount a small disk with")
	}
	namespaces := []string{"--user", "--map-root-user", "--mount"}
	if out, err := exec.Command(unshare, append(namespaces, "true")...).CombinedOutput(); err != nil {
		t.Skipf("this system allows no user namespaces, so no small disk can be mounted: %v: %s", err, out)
	}
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(unshare, append(namespaces, os.Args[0], "-test.run", strings.Join(run, "/"), "-test.count=1", "-test.v")...)
	cmd.Env = append(os.Environ(), smallDiskEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("on a small disk: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("on a small disk, the test did not run:\n%s", out)
	}
	t.Logf("on a small disk:\n%s", out)
}

// Eventually polls cond until it holds, failing the test with what after 30 s: the deadline
// guards against a hang, it measures nothing.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
