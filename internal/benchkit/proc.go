package benchkit

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Proc is what /proc says of a process at one moment.
type Proc struct {
	// RSS is its resident memory now, HWM the highest it has been since the process started
	// (VmRSS and VmHWM), in bytes.
	RSS, HWM int64
	Threads  int
	// OpenFiles is the number of its open file descriptors (sockets included).
	OpenFiles int
	// CPU is the user and system time of all its threads so far.
	CPU time.Duration
}

// proc opens a process of /proc; pid 0 is this process.
func proc(pid int) (procfs.Proc, error) {
	if pid == 0 {
		return procfs.Self()
	}
	return procfs.NewProc(pid)
}

// ReadProc reads a process's figures; pid 0 is this process.
func ReadProc(pid int) (Proc, error) {
	p, err := proc(pid)
	if err != nil {
		return Proc{}, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := p.NewStatus()
	if err != nil {
		return Proc{}, fmt.Errorf("process %d: %w", pid, err)
	}
	stat, err := p.Stat()
	if err != nil {
		return Proc{}, fmt.Errorf("process %d: %w", pid, err)
	}
	fds, err := p.FileDescriptorsLen()
	if err != nil {
		return Proc{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return Proc{RSS: int64(status.VmRSS), HWM: int64(status.VmHWM), Threads: stat.NumThreads, OpenFiles: fds, CPU: seconds(stat.CPUTime())}, nil
}

// ProcCPU is the user and system time a process has used so far, all threads together; pid 0
// is this process.
func ProcCPU(pid int) (time.Duration, error) {
	p, err := proc(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	stat, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return seconds(stat.CPUTime()), nil
}

// RSS is a process's resident memory now, in bytes; pid 0 is this process.
func RSS(pid int) (int64, error) {
	p, err := proc(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := p.NewStatus()
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return int64(status.VmRSS), nil
}

// OpenFilesLimit is a process's soft limit of open files, as the process sees it.
func OpenFilesLimit(pid int) (uint64, error) {
	p, err := proc(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	l, err := p.Limits()
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return l.OpenFiles, nil
}

// MachineCPU is the CPU time every process of the machine has used since it booted: user, nice,
// system, irq, softirq and steal (guest time is part of user).
func MachineCPU() (time.Duration, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, fmt.Errorf("machine CPU time: %w", err)
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, fmt.Errorf("machine CPU time: %w", err)
	}
	c := st.CPUTotal
	return seconds(c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal), nil
}

// ListenerPID is the process that listens on the TCP port of addr on this machine (a local
// ClickHouse server, to read its CPU time); 0 when there is none that this user may see.
func ListenerPID(addr string) int {
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return 0
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	const listen = 0x0A // TCP_LISTEN in /proc/net/tcp's st column
	sockets := map[string]bool{}
	//lint:ignore SA1019 procfs still reads /proc/net/tcp correctly; its suggested netlink would add a dependency for one benchmark helper.
	for _, table := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		lines, err := table()
		if err != nil {
			continue // no IPv6 on this machine
		}
		for _, l := range lines {
			if l.St == listen && l.LocalPort == port {
				sockets[fmt.Sprintf("socket:[%d]", l.Inode)] = true
			}
		}
	}
	if len(sockets) == 0 {
		return 0
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return 0
	}
	for _, p := range procs {
		targets, err := p.FileDescriptorTargets()
		if err != nil {
			continue // another user's process
		}
		for _, t := range targets {
			if sockets[t] {
				return p.PID
			}
		}
	}
	return 0
}

// PeakRSS records the highest resident memory of a process while it runs, sampled every
// 20 ms: VmHWM alone is the peak over the process's whole life, not over one phase of a run.
type PeakRSS struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// WatchPeakRSS starts sampling a process (pid 0: this process) until Stop.
func WatchPeakRSS(pid int) *PeakRSS {
	w := &PeakRSS{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, err := RSS(pid); err == nil && rss > w.peak.Load() {
				w.peak.Store(rss)
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends the sampling and returns the peak in bytes.
func (w *PeakRSS) Stop() int64 {
	close(w.stop)
	<-w.done
	return w.peak.Load()
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// RaiseOpenFilesLimit sets this process's soft limit of open files to its hard limit, and fails
// when that is below need. It sets it explicitly, although Go raises its own soft limit at
// start, because Go hands child processes the original limit back: set here, a server started
// afterwards (StartServe) inherits the raised one too.
func RaiseOpenFilesLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise the open-files limit to %d: %w", lim.Max, err)
		}
	}
	if lim.Cur < need {
		return fmt.Errorf("the open-files limit is %d, below the %d needed: raise the hard limit (ulimit -Hn)", lim.Cur, need)
	}
	return nil
}
