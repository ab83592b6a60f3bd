package benchkit

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// PinCPUs restricts every thread of the process, and restore gives each its CPUs back.
func TestPinCPUs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs to tell a pinned thread from a free one")
	}
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	restore, err := PinCPUs(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var set unix.CPUSet
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			t.Fatalf("task %q: %v", task.Name(), err)
		}
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // ended meanwhile
		}
		if set.Count() != 1 || !set.IsSet(1) {
			t.Errorf("thread %d may run on %d CPUs after PinCPUs(1), want CPU 1 only", tid, set.Count())
		}
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("after restore the thread may run on %d CPUs, before on %d", after.Count(), before.Count())
	}
	if _, err := PinCPUs(0, runtime.NumCPU()); err == nil {
		t.Error("PinCPUs to a CPU the machine does not have: no error")
	}
}
