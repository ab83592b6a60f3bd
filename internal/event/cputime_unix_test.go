//go:build unix

package event

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process has used (user and system, every thread, the
// garbage collector's too). Unlike the wall clock, it does not count the time other processes
// of a shared machine hold the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic("getrusage: " + err.Error())
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
