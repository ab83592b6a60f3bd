package livebench

import (
	"fmt"
	"time"

	"github.com/truthboard/truthboard/internal/benchkit"
)

// openFilesLimit is the soft limit of open files of a process, as it sees it, or "?".
func openFilesLimit(pid int) string {
	n, err := benchkit.OpenFilesLimit(pid)
	if err != nil {
		return "?"
	}
	return fmt.Sprint(n)
}

// cpuSample is the CPU time of the server, this process, ClickHouse and the whole machine at
// one moment.
type cpuSample struct {
	at                        time.Time
	server, self, ch, machine time.Duration
	serverOK, chOK, machineOK bool
}

func sampleCPU(serverPID, chPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	s.self, _ = benchkit.ProcCPU(0)
	m, err := benchkit.MachineCPU()
	s.machine, s.machineOK = m, err == nil
	if serverPID > 0 {
		v, err := benchkit.ProcCPU(serverPID)
		s.server, s.serverOK = v, err == nil
	}
	if chPID > 0 {
		v, err := benchkit.ProcCPU(chPID)
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

// readProc reads the server's memory and threads; zero figures when they cannot be read.
func readProc(pid int) benchkit.Proc {
	p, _ := benchkit.ReadProc(pid)
	return p
}
