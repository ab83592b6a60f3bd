package benchkit

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Machine is where a run happened, for its report. A figure that cannot be read is "?".
type Machine struct {
	CPUs     int
	CPUModel string
	RAM      string // e.g. "23.4 GiB"
	Kernel   string // Linux release
	Go       string // the Go version the command was built with
	// Commit is the checked-out commit, with " with uncommitted changes" when tracked files
	// differ from it; "?" outside a git checkout.
	Commit string
	Date   time.Time // when DescribeMachine ran, UTC
}

// DescribeMachine reads the machine the command runs on.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPUModel: "?", RAM: "?", Kernel: "?", Go: runtime.Version(), Commit: "?", Date: time.Now().UTC()}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 && cpus[0].ModelName != "" {
			m.CPUModel = cpus[0].ModelName
		}
		if mem, err := fs.Meminfo(); err == nil && mem.MemTotalBytes != nil {
			m.RAM = fmt.Sprintf("%.1f GiB", float64(*mem.MemTotalBytes)/(1<<30))
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.Kernel = b.String()
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.Commit += " with uncommitted changes"
		}
	}
	return m
}

// LoadAverage is the machine's 1-minute load average, e.g. "0.93", or "?": how busy the shared
// machine was around a measurement.
func LoadAverage() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "?"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.2f", l.Load1)
}

// ClickHouseDataFS names the file system that holds the data of the ClickHouse server of
// process pid, e.g. "ext4" or "tmpfs", read from the `<path>` of the config file on its command
// line; "?" when it cannot be told (another machine's server, another config layout). Inserts
// create and delete many files, so the file system shows in their times.
func ClickHouseDataFS(pid int) string {
	if pid <= 0 {
		return "?"
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	var config string
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if v, ok := strings.CutPrefix(arg, "--config-file="); ok {
			config = v
		}
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return "?"
	}
	m := regexp.MustCompile(`<path>\s*([^<]+?)\s*</path>`).FindSubmatch(b)
	if m == nil {
		return "?"
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(string(m[1]), &st); err != nil {
		return "?"
	}
	switch uint32(st.Type) {
	case 0x01021994:
		return "tmpfs"
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system type %#x", st.Type)
}
