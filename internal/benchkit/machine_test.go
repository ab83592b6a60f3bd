package benchkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readCmdline(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ClickHouseDataFS reads the data path from the config file named on the server's command line
// and names its file system.
func TestClickHouseDataFS(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "benchkit-")
	if err != nil {
		t.Skipf("no /dev/shm to hold a tmpfs data path: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	for _, tc := range []struct{ name, config, want string }{
		{"data on tmpfs", "<yandex>\n  <path>" + shm + "/data/</path>\n</yandex>\n", "tmpfs"},
		{"no data path", "<yandex></yandex>\n", "?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "config.xml")
			if err := os.WriteFile(config, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(shm, "data"), 0o700); err != nil {
				t.Fatal(err)
			}
			// A process whose command line names the config as clickhouse-server's does.
			cmd := exec.Command("sh", "-c", "sleep 30", "--config-file="+config)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			// Until the exec, the child's command line is this test's.
			for !strings.Contains(readCmdline(t, cmd.Process.Pid), "--config-file=") {
				time.Sleep(time.Millisecond)
			}
			if got := ClickHouseDataFS(cmd.Process.Pid); got != tc.want {
				t.Fatalf("ClickHouseDataFS = %q, want %q", got, tc.want)
			}
		})
	}
	if got := ClickHouseDataFS(0); got != "?" {
		t.Fatalf("ClickHouseDataFS(0) = %q, want ?", got)
	}
}
