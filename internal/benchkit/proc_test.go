package benchkit_test

import (
	"net"
	"os"
	"testing"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// TestReadProc reads this test process: it has memory, threads, open files and CPU time, and
// its pid names the same process as pid 0.
func TestReadProc(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, pid := range []int{0, os.Getpid()} {
		p, err := benchkit.ReadProc(pid)
		if err != nil {
			t.Fatal(err)
		}
		if p.RSS <= 0 || p.HWM < p.RSS || p.Threads < 1 || p.OpenFiles < 4 || p.CPU <= 0 {
			t.Errorf("ReadProc(%d) = %+v: want RSS > 0, HWM >= RSS, threads, at least 4 open files (stdin, stdout, stderr, a listener), CPU time", pid, p)
		}
	}
	if limit, err := benchkit.OpenFilesLimit(os.Getpid()); err != nil || limit < 4 {
		t.Errorf("OpenFilesLimit = %d, %v", limit, err)
	}
	if got := benchkit.ListenerPID(ln.Addr().String()); got != os.Getpid() {
		t.Errorf("ListenerPID(%s) = %d, want this process %d", ln.Addr(), got, os.Getpid())
	}
	if cpu, err := benchkit.MachineCPU(); err != nil || cpu <= 0 {
		t.Errorf("MachineCPU = %v, %v", cpu, err)
	}
	if _, err := benchkit.ReadProc(1 << 30); err == nil {
		t.Error("ReadProc of a process that does not exist: no error")
	}
	w := benchkit.WatchPeakRSS(0)
	if peak := w.Stop(); peak <= 0 {
		t.Errorf("peak RSS of this process = %d", peak)
	}
}

func TestDescribeMachine(t *testing.T) {
	m := benchkit.DescribeMachine()
	if m.CPUs < 1 || m.RAM == "?" || m.Kernel == "?" || m.Go == "" {
		t.Errorf("DescribeMachine = %+v", m)
	}
	if l := benchkit.LoadAverage(); l == "?" {
		t.Error("no load average")
	}
}
