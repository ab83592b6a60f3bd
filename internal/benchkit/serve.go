package benchkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ServeOptions say how to run `truthboard serve`. Its settings come from these fields only: the
// TRUTHBOARD_* variables of the caller's environment are not passed on, so that a variable left
// in a shell cannot change what is measured.
type ServeOptions struct {
	// Bin is the truthboard binary (make build, or BuildServer).
	Bin string
	// Listen is the server's -listen; empty: 127.0.0.1:0, a port the system chooses (the
	// server prints it).
	Listen string
	// DataDir is the server's -data-dir (the spool, generated credentials); required. Keep it
	// across a restart to keep the spool.
	DataDir string
	// LogFile receives what the server writes, stdout and stderr; empty: DataDir + ".log"
	// (beside the folder, not in it).
	LogFile string
	// ClickHouse and Database are the server's ClickHouse (the password goes in the environment,
	// not the command line).
	ClickHouse ClickHouse
	Database   string
	// IngestKeys and AdminToken are its credentials (-ingest-keys, -admin-token); empty: the
	// server generates them into DataDir.
	IngestKeys []string
	AdminToken string
	// Flags are more flags of serve, e.g. "-demo-rate", "0".
	Flags []string
	// Env are more environment variables, NAME=value (e.g. GODEBUG=gctrace=1); they win over
	// the caller's.
	Env []string
	// OnLog, when set, is called with every line the server writes, in order, from one goroutine
	// at a time, as the line arrives.
	OnLog func(line string)
	// StartTimeout bounds the wait for the server to answer GET /readyz; 0: a minute.
	StartTimeout time.Duration
}

// Serve is a running `truthboard serve` child process.
type Serve struct {
	// URL is where it answers, e.g. http://127.0.0.1:41234.
	URL string
	// PID is its process id, for SampleProc.
	PID int
	// DataDir and LogFile are ServeOptions' (LogFile with its default).
	DataDir, LogFile string
	// Ready is when it first answered /readyz 200.
	Ready time.Time

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited and its output is read
	exitErr error         // set before exited is closed

	mu       sync.Mutex
	tail     []string // its last logTailLines lines
	warnings int      // its WARN and ERROR lines
	first    string   // the first of them

	stopOnce sync.Once
	stopErr  error
}

// logTailLines is how many of the server's last lines Serve keeps for errors and LogTail.
const logTailLines = 200

// runningPrefix starts the line serve prints once it listens.
const runningPrefix = "Truthboard is running at "

// StartServe runs o.Bin serve and returns once the server answers GET /readyz with 200: it has
// migrated ClickHouse, listens, and its spool takes events. When it exits first, or does not
// answer within o.StartTimeout, or ctx ends, the process is killed and the error ends with the
// last lines of its log.
func StartServe(ctx context.Context, o ServeOptions) (*Serve, error) {
	if o.DataDir == "" {
		return nil, errors.New("start truthboard serve: no data folder given")
	}
	if _, err := os.Stat(o.Bin); err != nil {
		return nil, fmt.Errorf("truthboard binary: %w (make build builds bin/truthboard)", err)
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.LogFile == "" {
		o.LogFile = o.DataDir + ".log"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = time.Minute
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the server's data folder: %w", err)
	}
	logFile, err := os.Create(o.LogFile)
	if err != nil {
		return nil, fmt.Errorf("create the server's log: %w", err)
	}

	args := []string{"serve", "-listen", o.Listen, "-data-dir", o.DataDir}
	for _, f := range []struct{ name, value string }{
		{"-clickhouse-addr", o.ClickHouse.Addr},
		{"-clickhouse-user", o.ClickHouse.User},
		{"-clickhouse-protocol", o.ClickHouse.Protocol},
		{"-clickhouse-database", o.Database},
		{"-ingest-keys", strings.Join(o.IngestKeys, ",")},
		{"-admin-token", o.AdminToken},
	} {
		if f.value != "" { // empty: the server's default
			args = append(args, f.name, f.value)
		}
	}
	cmd := exec.Command(o.Bin, append(args, o.Flags...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRUTHBOARD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// exec.Cmd keeps the last of duplicate variables: o.Env wins.
	cmd.Env = append(cmd.Env, "TRUTHBOARD_CLICKHOUSE_PASSWORD="+o.ClickHouse.Password)
	cmd.Env = append(cmd.Env, o.Env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", o.Bin, err)
	}
	s := &Serve{PID: cmd.Process.Pid, DataDir: o.DataDir, LogFile: o.LogFile, cmd: cmd, exited: make(chan struct{})}

	urlc := make(chan string, 1)
	var outputs sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		outputs.Go(func() {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if rest, ok := strings.CutPrefix(line, runningPrefix); ok {
					url, _, _ := strings.Cut(rest, " ")
					select {
					case urlc <- url:
					default:
					}
				}
				s.logLine(logFile, line, o.OnLog)
			}
			_, _ = io.Copy(io.Discard, r) // a line longer than the buffer: keep the child unblocked
		})
	}
	go func() {
		outputs.Wait() // Wait closes the pipes: read them to the end first
		s.exitErr = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()

	fail := func(format string, args ...any) (*Serve, error) {
		s.Kill()
		return nil, fmt.Errorf(format+"; its log (%s) ends:\n%s", append(args, s.LogFile, s.LogTail(20))...)
	}
	deadline := time.After(o.StartTimeout)
	select {
	case s.URL = <-urlc:
	case <-s.exited:
		return fail("truthboard serve exited at start (%v)", s.exitErr)
	case <-deadline:
		return fail("truthboard serve did not say where it listens within %s", o.StartTimeout)
	case <-ctx.Done():
		s.Kill()
		return nil, ctx.Err()
	}
	for {
		code, err := readyz(ctx, s.URL)
		if code == http.StatusOK {
			s.Ready = time.Now()
			return s, nil
		}
		select {
		case <-s.exited:
			return fail("truthboard serve exited at start (%v)", s.exitErr)
		case <-deadline:
			return fail("truthboard serve at %s not ready within %s (last /readyz: %d, %v)", s.URL, o.StartTimeout, code, err)
		case <-ctx.Done():
			s.Kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// control is the client of the kit's own requests to a server: loopback only, whatever the
// environment says about proxies.
var control = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

func readyz(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return 0, err
	}
	resp, err := control.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *Serve) logLine(logFile *os.File, line string, onLog func(string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintln(logFile, line)
	if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
		if s.warnings == 0 {
			s.first = line
		}
		s.warnings++
	}
	s.tail = append(s.tail, line)
	if len(s.tail) > logTailLines {
		s.tail = s.tail[len(s.tail)-logTailLines:]
	}
	if onLog != nil {
		onLog(line)
	}
}

// LogTail is the server's last n lines (at most 200).
func (s *Serve) LogTail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail[max(0, len(s.tail)-n):], "\n")
}

// Warnings is the number of WARN and ERROR lines the server has written, and the first of them.
func (s *Serve) Warnings() (n int, first string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.warnings, s.first
}

// Exited is closed once the process has exited; ExitErr then says how.
func (s *Serve) Exited() <-chan struct{} { return s.exited }

// ExitErr is the process's exit (nil: status 0), once Exited is closed.
func (s *Serve) ExitErr() error {
	<-s.exited
	return s.exitErr
}

// Stop sends SIGTERM, as an orchestrator stopping the server does (it finishes what is in
// flight and drains its spool within its -shutdown-timeout), and waits for the exit, at most
// within; then it kills the process. The error says a status other than 0, or the kill, with
// the end of the log. Only the first call stops; later ones return its result.
func (s *Serve) Stop(within time.Duration) error {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(within):
				_ = s.cmd.Process.Kill()
				<-s.exited
				s.stopErr = fmt.Errorf("truthboard serve did not stop within %s of SIGTERM: killed; its log ends:\n%s", within, s.LogTail(20))
				return
			}
		}
		if s.exitErr != nil {
			s.stopErr = fmt.Errorf("truthboard serve exited with %v; its log ends:\n%s", s.exitErr, s.LogTail(20))
		}
	})
	return s.stopErr
}

// Kill kills the process at once (SIGKILL), as a crash or the OOM killer would, and waits for
// it; nothing when it has exited already.
func (s *Serve) Kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}
