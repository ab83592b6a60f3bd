package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports (reading sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

// procCPU is the CPU time (user + system) a process has used, all threads together.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procMem is a process's resident memory now and its peak (VmRSS, VmHWM) in bytes, and its
// number of threads.
type procMem struct {
	RSS, HWM int64
	Threads  int64
}

func readProcMem(pid int) procMem {
	file := fmt.Sprintf("/proc/%d/status", pid)
	rss, _ := procField(file, "VmRSS")
	hwm, _ := procField(file, "VmHWM")
	thr, _ := procField(file, "Threads")
	return procMem{RSS: rss << 10, HWM: hwm << 10, Threads: thr}
}

// procField reads the number of a "Name: 123 kB" line of a /proc file.
func procField(file, name string) (int64, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// procLimit is the soft "Max open files" of a process, as its /proc/<pid>/limits says.
func procOpenFilesLimit(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	return "?"
}

// selfCPU is the CPU time this process (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time all processes of the machine have used (/proc/stat: user,
// nice, system, irq, softirq, steal; guest time is part of user).
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, true
}

// cpuSample is the CPU time of the server, this process, ClickHouse and the whole machine at
// one moment.
type cpuSample struct {
	at                        time.Time
	server, self, ch, machine time.Duration
	serverOK, chOK, machineOK bool
}

func sampleCPU(serverPID, chPID int) cpuSample {
	s := cpuSample{at: time.Now(), self: selfCPU()}
	s.machine, s.machineOK = machineBusy()
	if serverPID > 0 {
		v, err := procCPU(serverPID)
		s.server, s.serverOK = v, err == nil
	}
	if chPID > 0 {
		v, err := procCPU(chPID)
		s.ch, s.chOK = v, err == nil
	}
	return s
}

// cpuUse is CPU use between two samples in percent of one core (200% = both cores of 2).
type cpuUse struct {
	Server, Self, ClickHouse float64 // -1: not measured
	// Other is the rest of the machine: every other process (other benchmarks, tests, the
	// kernel's own work). Well above a few percent, the phase ran on a contended machine.
	Other float64
}

// cpuBetween computes the use between a and b; inProcess says the server is this process.
func cpuBetween(a, b cpuSample, inProcess bool) cpuUse {
	wall := b.at.Sub(a.at).Seconds()
	pct := func(x, y time.Duration) float64 { return 100 * (y - x).Seconds() / wall }
	u := cpuUse{Server: -1, ClickHouse: -1, Other: -1, Self: pct(a.self, b.self)}
	if a.serverOK && b.serverOK {
		u.Server = pct(a.server, b.server)
	}
	if a.chOK && b.chOK {
		u.ClickHouse = pct(a.ch, b.ch)
	}
	if a.machineOK && b.machineOK && u.Server >= 0 && u.ClickHouse >= 0 {
		u.Other = max(0, pct(a.machine, b.machine)-u.Server-u.ClickHouse)
		if !inProcess {
			u.Other = max(0, u.Other-u.Self)
		}
	}
	return u
}
