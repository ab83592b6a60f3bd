// Package screensbench is `truthboard-tools screens-bench`: a fleet of paired screens on one
// `truthboard serve`. Each screen is paired through the real path (a pairing socket, POST
// /v1/screens/pair), then holds a live connection with its own display token and sends a
// heartbeat every 5 s. It measures the server's memory and CPU with the screens connected and
// no commands (the baseline), then while a command is sent to every screen, and how long the
// commands take to reach all of them. It writes the section "## Screens" of docs/benchmarks.md.
package screensbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/truthboard/truthboard/internal/benchkit"
)

type options struct {
	ch        benchkit.ClickHouse
	screens   int
	workers   int
	baseline  time.Duration
	out       string
	serverBin string
}

// Run is the subcommand.
func Run(ctx context.Context, args []string, log *slog.Logger) error {
	o := &options{ch: benchkit.ClickHouseFromEnv()}
	fs := flag.NewFlagSet("truthboard-tools screens-bench", flag.ContinueOnError)
	o.ch.AddFlags(fs)
	fs.IntVar(&o.screens, "screens", 1000, "paired `screens`, each with its own live connection and heartbeat")
	fs.IntVar(&o.workers, "workers", 16, "admin requests at once (pairing, commands)")
	fs.DurationVar(&o.baseline, "baseline", 30*time.Second, "how long the screens stay connected without commands before they are measured")
	fs.StringVar(&o.out, "out", "", "Markdown `file` whose section \"## Screens\" is replaced (e.g. docs/benchmarks.md)")
	fs.StringVar(&o.serverBin, "server-bin", "", "truthboard `binary` (default: go build ./cmd/truthboard)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.screens < 1 || o.workers < 1 {
		return fmt.Errorf("%w: -screens and -workers must be at least 1", benchkit.ErrUsage)
	}
	if err := benchkit.RaiseOpenFilesLimit(uint64(3*o.screens + 200)); err != nil {
		return fmt.Errorf("%w, or lower -screens", err)
	}
	r, err := run(ctx, o, log)
	if err != nil {
		return err
	}
	body := render(o, r, benchkit.CommandLine("screens-bench", args))
	fmt.Print(body)
	if o.out != "" {
		if err := benchkit.WriteSection(o.out, "Screens", body); err != nil {
			return err
		}
		log.Info("wrote section ## Screens", "file", o.out)
	}
	return nil
}

// result are the figures of a run.
type result struct {
	machine                   benchkit.Machine
	idleRSS                   int64
	pairing                   benchkit.Summary[time.Duration]
	pairingAll                time.Duration
	baselineRSS, baselinePeak int64
	baselineCPU               time.Duration
	single, broadcast         commandPhase
	online                    int
	heartbeats                int64
	baselineSpan              time.Duration
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func run(ctx context.Context, o *options, log *slog.Logger) (*result, error) {
	res := &result{machine: benchkit.DescribeMachine()}
	tmp, err := os.MkdirTemp("", "truthboard-screens-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := o.serverBin
	if bin == "" {
		log.Info("building the server", "cmd", "go build ./cmd/truthboard")
		if bin, err = benchkit.BuildServer(ctx, tmp); err != nil {
			return nil, err
		}
	}
	database := "truthboard_sbench_" + randomHex(4)
	admin := "tba_sbench_" + randomHex(8)
	n := fmt.Sprint(o.screens + 10)
	srv, err := benchkit.StartServe(ctx, benchkit.ServeOptions{
		Bin: bin, DataDir: filepath.Join(tmp, "data"), ClickHouse: o.ch, Database: database, AdminToken: admin,
		Flags: []string{"-demo-rate", "0", "-screen-max-pending", n, "-screen-max-pending-per-address", n,
			"-live-max-conns-per-address", fmt.Sprint(2*o.screens + 10), "-screen-wrong-codes-per-minute", n},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = srv.Stop(30 * time.Second)
		if err := o.ch.DropDatabase(context.Background(), database); err != nil {
			log.Warn("database not dropped", "err", err)
		}
	}()
	c := &client{url: srv.URL, admin: admin, http: &http.Client{Timeout: time.Minute}}
	time.Sleep(2 * time.Second)
	res.idleRSS, _ = benchkit.RSS(srv.PID)

	// Pair every screen through the real path.
	log.Info("pairing", "screens", o.screens)
	screens := make([]*screen, o.screens)
	start := time.Now()
	var took []time.Duration
	var mu sync.Mutex
	err = parallel(ctx, o.screens, o.workers, func(i int) error {
		s, d, err := c.pair(ctx, fmt.Sprintf("Wall %d", i+1))
		if err != nil {
			return fmt.Errorf("pair screen %d: %w", i+1, err)
		}
		screens[i] = s
		mu.Lock()
		took = append(took, d)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.pairingAll, res.pairing = time.Since(start), benchkit.Summarize(took)

	// Connect them, each with its own token, subscribed to the wall and sending heartbeats.
	log.Info("connecting", "screens", o.screens)
	var heartbeats atomic.Int64
	liveCtx, stopLive := context.WithCancel(ctx)
	defer stopLive()
	var wg sync.WaitGroup
	err = parallel(ctx, o.screens, 50, func(i int) error {
		return screens[i].connect(liveCtx, srv.URL, &wg, &heartbeats)
	})
	if err != nil {
		return nil, err
	}
	defer wg.Wait()
	defer stopLive()
	if res.online, err = c.waitOnline(ctx, o.screens, 2*time.Minute); err != nil {
		return nil, err
	}

	// Baseline: connected, heartbeating, no commands.
	log.Info("baseline", "duration", o.baseline)
	peak := benchkit.WatchPeakRSS(srv.PID)
	cpu0, _ := benchkit.ProcCPU(srv.PID)
	hb0 := heartbeats.Load()
	t0 := time.Now()
	time.Sleep(o.baseline)
	cpu1, _ := benchkit.ProcCPU(srv.PID)
	res.baselineSpan = time.Since(t0)
	res.baselineCPU, res.heartbeats = cpu1-cpu0, heartbeats.Load()-hb0
	res.baselineRSS, _ = benchkit.RSS(srv.PID)
	res.baselinePeak = peak.Stop()

	// Commands: identify to every screen, one request per screen, then in one request; each
	// screen notes when its command arrives.
	log.Info("commands, one request per screen", "screens", o.screens)
	res.single, err = phase(srv.PID, screens, func(sent int64) error {
		return parallel(ctx, o.screens, o.workers, func(i int) error {
			screens[i].sent.Store(time.Now().UnixNano())
			return c.command(ctx, "/v1/screens/"+screens[i].id+"/commands")
		})
	})
	if err != nil {
		return res, err
	}
	time.Sleep(5 * time.Second)
	log.Info("commands, one request for every screen", "screens", o.screens)
	res.broadcast, err = phase(srv.PID, screens, func(sent int64) error {
		for _, s := range screens {
			s.sent.Store(sent)
		}
		return c.command(ctx, "/v1/screens/commands")
	})
	if err != nil {
		return res, err
	}
	return res, nil
}

// commandPhase are the figures of sending a command to every screen.
type commandPhase struct {
	rss, peak          int64
	cpu, span          time.Duration
	issueAll, reachAll time.Duration
	reach              benchkit.Summary[time.Duration]
	reached            int
}

// phase runs issue, which sends an identify command to every screen, and waits until every
// screen has it (at most 2 minutes).
func phase(pid int, screens []*screen, issue func(sent int64) error) (commandPhase, error) {
	var p commandPhase
	for _, s := range screens {
		s.sent.Store(0)
		s.got.Store(0)
	}
	peak := benchkit.WatchPeakRSS(pid)
	cpu0, _ := benchkit.ProcCPU(pid)
	start := time.Now()
	if err := issue(start.UnixNano()); err != nil {
		peak.Stop()
		return p, err
	}
	p.issueAll = time.Since(start)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p.reached = 0
		for _, s := range screens {
			if s.got.Load() != 0 {
				p.reached++
			}
		}
		if p.reached == len(screens) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var last int64
	var lat []time.Duration
	for _, s := range screens {
		if g := s.got.Load(); g != 0 {
			last = max(last, g)
			lat = append(lat, time.Duration(g-s.sent.Load()))
		}
	}
	p.reachAll, p.reach = time.Duration(last-start.UnixNano()), benchkit.Summarize(lat)
	cpu1, _ := benchkit.ProcCPU(pid)
	p.span, p.cpu = time.Since(start), cpu1-cpu0
	p.rss, _ = benchkit.RSS(pid)
	p.peak = peak.Stop()
	if p.reached < len(screens) {
		return p, fmt.Errorf("%d of %d screens got their command within 2 minutes", p.reached, len(screens))
	}
	return p, nil
}

// parallel runs f(0..n-1) on workers goroutines; the first error stops the others.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

// client is the admin's side.
type client struct {
	url, admin string
	http       *http.Client
}

func (c *client) do(ctx context.Context, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// screen is one simulated TV.
type screen struct {
	id, token string
	sent, got atomic.Int64 // when its command was sent, and arrived (UnixNano)
}

func wsURL(base, path string) string { return "ws" + strings.TrimPrefix(base, "http") + path }

// pair opens a pairing socket, enters its code and returns the screen with its token.
func (c *client) pair(ctx context.Context, name string) (*screen, time.Duration, error) {
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL(c.url, "/v1/screens/pairing"), nil)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	var m struct {
		Type, Code, Token string
		Screen            struct{ ID string }
	}
	if err := conn.ReadJSON(&m); err != nil {
		return nil, 0, fmt.Errorf("read the code: %w", err)
	}
	start := time.Now()
	body, _ := json.Marshal(map[string]any{"code": m.Code, "name": name})
	status, b, err := c.do(ctx, "POST", "/v1/screens/pair", string(body))
	if err != nil || status != http.StatusCreated {
		return nil, 0, fmt.Errorf("POST /v1/screens/pair: %d %s %v", status, b, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := conn.ReadJSON(&m); err != nil || m.Type != "paired" {
		return nil, 0, fmt.Errorf("the TV got no credential: %+v %v", m, err)
	}
	return &screen{id: m.Screen.ID, token: m.Token}, time.Since(start), nil
}

// connect opens the screen's live connection: subscribe, then a heartbeat every 5 s; it notes
// the arrival of an identify command. The node's credential cache learns of a new token within
// its refresh interval, so a refused dial is tried again for a while.
func (s *screen) connect(ctx context.Context, base string, wg *sync.WaitGroup, heartbeats *atomic.Int64) error {
	var conn *websocket.Conn
	var err error
	for try := 0; try < 40; try++ {
		conn, _, err = websocket.DefaultDialer.DialContext(ctx, wsURL(base, "/v1/live?token="+s.token), nil)
		if err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("screen %s: live connection: %w", s.id, err)
	}
	var writeMu sync.Mutex
	send := func(v string) error {
		writeMu.Lock()
		defer writeMu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteMessage(websocket.TextMessage, []byte(v))
	}
	if err := send(`{"type":"subscribe","view":"tv","window":"5m"}`); err != nil {
		return err
	}
	beat := `{"type":"heartbeat","resolution":"1920x1080","version":"bench","errors":[]}`
	wg.Add(2)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			if send(beat) == nil {
				heartbeats.Add(1)
			}
			select {
			case <-ctx.Done():
				_ = conn.Close()
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if strings.Contains(string(msg), `"command":"identify"`) && s.got.Load() == 0 {
				s.got.Store(time.Now().UnixNano())
			}
		}
	}()
	return nil
}

// waitOnline polls GET /v1/screens until want screens are online.
func (c *client) waitOnline(ctx context.Context, want int, within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for {
		status, b, err := c.do(ctx, "GET", "/v1/screens", "")
		online := 0
		if err == nil && status == http.StatusOK {
			var l struct{ Screens []struct{ State string } }
			_ = json.Unmarshal(b, &l)
			for _, s := range l.Screens {
				if s.State == "online" {
					online++
				}
			}
			if online >= want {
				return online, nil
			}
		}
		if time.Now().After(deadline) {
			return online, fmt.Errorf("%d of %d screens online after %s (%d %s %v)", online, want, within, status, b, err)
		}
		select {
		case <-ctx.Done():
			return online, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// command posts an identify command to path: one screen's commands, or /v1/screens/commands.
func (c *client) command(ctx context.Context, path string) error {
	status, b, err := c.do(ctx, "POST", path, `{"command":"identify"}`)
	if err != nil {
		return err
	}
	if status != http.StatusAccepted {
		return errors.New("command: " + fmt.Sprint(status) + " " + string(b))
	}
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func render(o *options, r *result, command string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Screens\n\n")
	w("%s paired screens on one `truthboard serve` (no demo traffic): each paired through a pairing socket and `POST /v1/screens/pair`, then holding a live connection with its own display token, subscribed to the wall and sending a heartbeat every 5 s. ", benchkit.Thousands(o.screens))
	w("The baseline is the same connections with no commands for %s. Then an `identify` command is sent to every screen, first with one request per screen (`POST /v1/screens/{id}/commands`, %d at once), then with one request for all (`POST /v1/screens/commands`); each screen notes when its command arrives.\n\n", o.baseline, o.workers)
	w("Command: `%s`  \nMachine: %s, %d cores, %s; %s; commit %s, %s; load average %s at the end (the machine is shared).\n\n", command, r.machine.CPUModel, r.machine.CPUs, r.machine.RAM, r.machine.Go, r.machine.Commit, r.machine.Date.Format("2006-01-02 15:04 UTC"), benchkit.LoadAverage())
	w("| phase | server RSS | peak RSS | server CPU | notes |\n|---|---|---|---|---|\n")
	w("| idle, no screen | %s | | | |\n", mib(r.idleRSS))
	w("| %s screens connected, no commands (baseline, %s) | %s | %s | %.1f%% of a core | %s heartbeats, %d screens listed online |\n",
		benchkit.Thousands(o.screens), r.baselineSpan.Round(time.Second), mib(r.baselineRSS), mib(r.baselinePeak),
		100*r.baselineCPU.Seconds()/r.baselineSpan.Seconds(), benchkit.Thousands(r.heartbeats), r.online)
	for _, p := range []struct {
		name string
		p    commandPhase
	}{{fmt.Sprintf("%s commands, one request per screen", benchkit.Thousands(o.screens)), r.single}, {"one command for every screen, one request", r.broadcast}} {
		w("| %s (%s) | %s | %s | %.1f%% of a core | |\n", p.name, ms(p.p.span), mib(p.p.rss), mib(p.p.peak), 100*p.p.cpu.Seconds()/p.p.span.Seconds())
	}
	w("\n| figure | value |\n|---|---|\n")
	w("| memory per connected screen (baseline RSS − idle RSS) / screens | %.0f KiB |\n", float64(r.baselineRSS-r.idleRSS)/1024/float64(o.screens))
	w("| pairing, one screen (code entered → the TV holds its token) | p50 %s, p90 %s, max %s |\n", ms(r.pairing.P50), ms(r.pairing.P90), ms(r.pairing.Max))
	w("| pairing all %s, %d at once | %s |\n", benchkit.Thousands(o.screens), o.workers, ms(r.pairingAll))
	for _, p := range []struct {
		name string
		p    commandPhase
	}{{"one request per screen, " + fmt.Sprint(o.workers) + " at once", r.single}, {"one request for every screen", r.broadcast}} {
		w("| %s: the API's answers | %s |\n", p.name, ms(p.p.issueAll))
		w("| %s: first request → last screen has its command | **%s** (%d of %d reached) |\n", p.name, ms(p.p.reachAll), p.p.reached, o.screens)
		w("| %s: one screen's command, sent → arrived | p50 %s, p90 %s, p99 %s, max %s |\n", p.name, ms(p.p.reach.P50), ms(p.p.reach.P90), ms(p.p.reach.P99), ms(p.p.reach.Max))
	}
	w("\n")
	w("Reading: a command is queued in ClickHouse, and the node holding the screen delivers it at its next poll (every second: one query for the queued commands of all its screens, one insert marking them delivered), so a command takes up to a second plus those queries to arrive, however many screens. Sent one request per screen, the time to reach them all is the admin API's: each request reads its screen and its queue and inserts one row. Sent as one request, it is one read, one insert of all the rows, and one poll.\n")
	return b.String()
}
