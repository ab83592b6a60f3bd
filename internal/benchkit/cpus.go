package benchkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// PinCPUs restricts every thread of process pid (0: this process) to the CPUs listed, as
// `taskset -a -p` does; threads and child processes started later inherit it from the thread
// that starts them. It returns a function that gives every thread found now back the CPUs it
// had. It fails on a machine with fewer CPUs than the list names.
func PinCPUs(pid int, cpus ...int) (restore func() error, err error) {
	if pid == 0 {
		pid = os.Getpid()
	}
	var want unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= runtime.NumCPU() {
			return nil, fmt.Errorf("pin process %d: no CPU %d", pid, c)
		}
		want.Set(c)
	}
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return nil, fmt.Errorf("pin process %d: %w", pid, err)
	}
	before := map[int]unix.CPUSet{}
	restore = func() error {
		var errs []error
		for tid, set := range before {
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("give thread %d of process %d its CPUs back: %w", tid, pid, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			if errors.Is(err, unix.ESRCH) { // the thread has ended meanwhile
				continue
			}
			return nil, errors.Join(fmt.Errorf("pin process %d: %w", pid, err), restore())
		}
		before[tid] = set
		if err := unix.SchedSetaffinity(tid, &want); err != nil && !errors.Is(err, unix.ESRCH) {
			return nil, errors.Join(fmt.Errorf("pin thread %d of process %d to CPUs %v: %w", tid, pid, cpus, err), restore())
		}
	}
	return restore, nil
}
