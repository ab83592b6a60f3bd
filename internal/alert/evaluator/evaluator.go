// Package evaluator runs the alert engine inside the server: every interval it reads what the
// rules need from ClickHouse (one query set, whatever the number of screens), evaluates, records
// each state change in the history, and hands the alerts that fire or resolve to delivery. It
// is the alert engine's only I/O; internal/alert stays pure.
//
// At start it restores the alerts that were pending or firing and the silences in force from
// the history, so that a restart neither forgets a breach nor announces it again as new: the
// restored firing alerts go to Alertmanager (which needs them re-sent to keep them open, and
// recognises them by fingerprint) but not to the webhooks (which would take them as new).
//
// What people are told follows what they were told before: a firing alert is announced once,
// as soon as it fires unsilenced (so one that fired under a silence is announced when the
// silence ends, if it still fires), and an announced alert's resolve is always delivered,
// silenced or not, so that no destination keeps an alert open that is over.
package evaluator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/notify"
	"github.com/truthboard/truthboard/internal/annotation"
)

// Store is what the evaluator reads and writes in ClickHouse (internal/store implements it).
type Store interface {
	AlertData(ctx context.Context, qs []alert.Query) ([]alert.Data, error)
	AppendAlertTransitions(ctx context.Context, ts []alert.Transition) error
	LatestAlerts(ctx context.Context) ([]alert.Alert, error)
	AlertSilences(ctx context.Context, now time.Time) ([]alert.Silence, error)
	AddAlertSilence(ctx context.Context, s alert.Silence) error
}

// Sender delivers alerts without blocking (notify.Webhook, notify.Alertmanager).
type Sender interface {
	Send(alerts []notify.Alert)
}

// Options configure an Evaluator.
type Options struct {
	// Interval between evaluations (default 1 s).
	Interval time.Duration
	// Timeout bounds one evaluation's queries (default 10 s, at most the interval's 10 times).
	Timeout time.Duration
	// PublicURL is where people reach the dashboards; alerts link to the drill-down there.
	PublicURL string
	// Webhooks get the alerts that fire and resolve; restored alerts are not sent to them.
	Webhooks []Sender
	// Alertmanagers get the same, and the restored firing alerts at start.
	Alertmanagers []Sender
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Annotations, when set, records every alert that fires as an annotation tagged "alert" (a
	// mark at its firing, which becomes a region when it resolves), so the trend charts show
	// when it held.
	Annotations AnnotationWriter
	// RulesFile is where rules set over the API are kept, so that a restart keeps them; empty
	// when the rules come from a configured file, which the API then does not change.
	RulesFile string
	// Leader, when set, reports whether this node is the one of its cluster that records and
	// delivers (it holds the cluster's lease, internal/claim). When it is false, the node still
	// evaluates, so its screens and GET /v1/alerts show the alerts as the leader sees them, but
	// records no transition or annotation and sends nothing. When it turns true, the node first
	// reads from the history which alerts the leader before it recorded firing, and takes them
	// as announced: it does not announce them again, and delivers their resolve. Nil: a single
	// node, always the leader.
	Leader func() bool
	// Observers report the alerts the server observes itself (screens gone silent,
	// internal/screen), read at every evaluation; the engine's Config.Sources must name them.
	Observers []Observer
}

// Observer reports the conditions of one kind of alert the server observes itself.
type Observer interface {
	// Alertname names its alerts: one of the engine's Config.Sources.
	Alertname() string
	// Observe returns the conditions that hold at now.
	Observe(ctx context.Context, now time.Time) ([]alert.Condition, error)
	// Page is the path of the page that shows them, which their deliveries link to.
	Page() string
}

// AnnotationWriter stores annotations (internal/store).
type AnnotationWriter interface {
	WriteAnnotation(ctx context.Context, a annotation.Annotation, version time.Time, deleted bool) error
}

// APIRulesFile is the name, in the data folder, of the rules set over the API.
const APIRulesFile = "alert-rules.json"

// ErrRulesFromFile refuses a change of rules over the API when they come from a configured
// file: the file stays the one truth, and a restart would undo the change.
var ErrRulesFromFile = errors.New("the alert rules come from the file set by TRUTHBOARD_ALERT_RULES (-alert-rules): change that file and restart, or unset it to manage the rules over the API")

// Stats are the evaluator's counters since start.
type Stats struct {
	Evaluations uint64
	Failures    uint64
	// LastDuration is the last evaluation's time, its queries included.
	LastDuration time.Duration
	// LastError is the last failed evaluation's error, "" after a successful one.
	LastError string
}

// Evaluator owns the evaluation loop of one engine.
type Evaluator struct {
	engine *alert.Engine
	store  Store
	opts   Options
	log    *slog.Logger

	evaluations, failures atomic.Uint64
	mu                    sync.Mutex
	lastDuration          time.Duration
	lastError             string

	// active is the engine's pending and firing alerts after the last evaluation, firing
	// first, read by every screen's tick. publishMu orders its writers (the loop, and the
	// web edge's acknowledgements and silences) so that an older snapshot never replaces a
	// newer one.
	active    atomic.Pointer[[]alert.Alert]
	publishMu sync.Mutex

	// evalMu makes evaluations one at a time, whoever calls Evaluate. announced, under it, are
	// the fingerprints of the firing alerts the destinations have been told of (or, restored,
	// may have been): their resolve is delivered.
	evalMu    sync.Mutex
	announced map[string]bool
	// leading, under evalMu, is whether the last evaluation was the leader's (Options.Leader).
	leading bool

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an evaluator of engine's rules over store. Start restores and starts it.
func New(engine *alert.Engine, store Store, opts Options, log *slog.Logger) *Evaluator {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = min(10*time.Second, 10*opts.Interval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Evaluator{engine: engine, store: store, opts: opts, log: log, announced: map[string]bool{}}
	empty := []alert.Alert{}
	e.active.Store(&empty)
	return e
}

// Start restores the alerts and silences of the history (a failure is logged, and the engine
// starts empty: ClickHouse may be down) and starts the loop. Stop ends it.
func (e *Evaluator) Start(ctx context.Context) {
	e.restore(ctx)
	loopCtx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go e.run(loopCtx)
}

// Stop ends the loop and waits for it.
func (e *Evaluator) Stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
}

// Active returns the pending and firing alerts after the last evaluation, firing first. The
// slice is shared: do not change it.
func (e *Evaluator) Active() []alert.Alert { return *e.active.Load() }

// Engine is the engine the evaluator runs, for the web edge (acknowledge, silence, rules).
func (e *Evaluator) Engine() *alert.Engine { return e.engine }

// Stats returns the counters now.
func (e *Evaluator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{Evaluations: e.evaluations.Load(), Failures: e.failures.Load(), LastDuration: e.lastDuration, LastError: e.lastError}
}

func (e *Evaluator) restore(ctx context.Context) {
	alerts, err := e.store.LatestAlerts(ctx)
	if err != nil {
		e.log.Warn("alerts not restored from the history; starting with none", "err", err)
		return
	}
	silences, err := e.store.AlertSilences(ctx, e.opts.Now())
	if err != nil {
		e.log.Warn("silences not restored from the history", "err", err)
	}
	e.engine.Restore(alerts, silences)
	active := e.publish()
	leader := e.leader()
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	var firing []notify.Alert
	for _, a := range active {
		if a.State != alert.Firing {
			continue
		}
		// Announced before the restart, or silenced then: either way its resolve must reach
		// whoever may have seen it fire.
		e.announced[a.Fingerprint] = true
		if !a.Silenced { // as silenced now, not as the history recorded it
			firing = append(firing, e.notifyAlert(a, notify.StatusFiring, time.Time{}))
		}
	}
	if len(firing) > 0 && leader {
		for _, s := range e.opts.Alertmanagers {
			s.Send(firing)
		}
	}
	e.log.Info("alerts restored", "active", len(alerts), "firing", len(firing), "silences", len(silences))
}

func (e *Evaluator) run(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.Evaluate(ctx)
	}
}

// Evaluate runs one evaluation now: the loop calls it every interval; tests call it directly.
func (e *Evaluator) Evaluate(ctx context.Context) {
	e.evalMu.Lock()
	started := time.Now()
	now := e.opts.Now().UTC()
	err := e.evaluate(ctx, now)
	took := time.Since(started)
	e.evalMu.Unlock()
	e.evaluations.Add(1)
	e.mu.Lock()
	e.lastDuration = took
	if err != nil {
		e.failures.Add(1)
		if e.lastError == "" && ctx.Err() == nil {
			e.log.Warn("alert evaluation failed; alerts keep their state", "err", err)
		}
		e.lastError = err.Error()
	} else {
		e.lastError = ""
	}
	e.mu.Unlock()
}

func (e *Evaluator) evaluate(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	leader := e.leader()
	if leader && !e.leading && e.opts.Leader != nil {
		if err := e.takeOver(ctx); err != nil {
			return err
		}
	}
	e.leading = leader
	data, err := e.store.AlertData(ctx, e.engine.Queries(now))
	if err != nil {
		return fmt.Errorf("read the rollups: %w", err)
	}
	res := e.engine.Evaluate(alert.Input{Now: now, Data: data, Observed: e.observe(ctx, now)})
	active := e.publish()
	if len(res.Transitions) > 0 && leader {
		// The history first: a transition that is delivered but not recorded would be announced
		// again after a restart. A failure to record is retried by nothing (the engine has moved
		// on), so it is logged; delivery goes ahead, as people must hear of a breach.
		if err := e.store.AppendAlertTransitions(ctx, res.Transitions); err != nil {
			e.log.Warn("alert transitions not recorded in the history", "transitions", len(res.Transitions), "err", err)
		}
		e.annotate(ctx, res.Transitions)
	}
	e.deliver(res.Transitions, active, leader)
	return nil
}

// observe reads every observer; one whose read fails is left out, so its alerts keep their
// state until a read succeeds.
func (e *Evaluator) observe(ctx context.Context, now time.Time) map[string][]alert.Condition {
	if len(e.opts.Observers) == 0 {
		return nil
	}
	out := map[string][]alert.Condition{}
	for _, o := range e.opts.Observers {
		conds, err := o.Observe(ctx, now)
		if err != nil {
			e.log.Warn("observed alerts not read; they keep their state", "alertname", o.Alertname(), "err", err)
			continue
		}
		out[o.Alertname()] = conds
	}
	return out
}

// observer is the observer whose alerts are named alertname, nil for a rule's.
func (e *Evaluator) observer(alertname string) Observer {
	for _, o := range e.opts.Observers {
		if o.Alertname() == alertname {
			return o
		}
	}
	return nil
}

// takeOver makes this node the one that delivers: the firing alerts of the history are those
// the nodes before it announced (or muted), so they are the announced ones now.
func (e *Evaluator) takeOver(ctx context.Context) error {
	alerts, err := e.store.LatestAlerts(ctx)
	if err != nil {
		return fmt.Errorf("take over delivery: read which alerts were announced: %w", err)
	}
	e.announced = map[string]bool{}
	for _, a := range alerts {
		if a.State == alert.Firing {
			e.announced[a.Fingerprint] = true
		}
	}
	e.log.Info("this node now records and delivers the alerts", "firing", len(e.announced))
	return nil
}

// leader reports whether this node records and delivers (Options.Leader).
func (e *Evaluator) leader() bool { return e.opts.Leader == nil || e.opts.Leader() }

// deliver sends what people are told of: the resolve of every announced alert that resolved,
// and every firing alert not silenced that was not announced yet (it just fired, or the silence
// that muted it ended). A node that is not the leader delivers nothing.
func (e *Evaluator) deliver(ts []alert.Transition, active []alert.Alert, leader bool) {
	if !leader {
		return
	}
	var out []notify.Alert
	for _, t := range ts {
		if t.To == alert.Resolved && e.announced[t.Alert.Fingerprint] {
			delete(e.announced, t.Alert.Fingerprint)
			out = append(out, e.notifyAlert(t.Alert, notify.StatusResolved, t.At))
		}
	}
	for _, a := range active {
		if a.State == alert.Firing && !a.Silenced && !e.announced[a.Fingerprint] {
			e.announced[a.Fingerprint] = true
			out = append(out, e.notifyAlert(a, notify.StatusFiring, time.Time{}))
		}
	}
	if len(out) == 0 {
		return
	}
	for _, s := range slices.Concat(e.opts.Webhooks, e.opts.Alertmanagers) {
		s.Send(out)
	}
}

// notifyAlert is a as delivery sends it, linking to the drill-down of its moment × channel.
func (e *Evaluator) notifyAlert(a alert.Alert, status notify.Status, endsAt time.Time) notify.Alert {
	startsAt := a.FiredAt
	if startsAt.IsZero() {
		startsAt = a.ActiveAt
	}
	return notify.Alert{
		Labels:       a.Labels,
		Annotations:  a.Annotations,
		StartsAt:     startsAt,
		EndsAt:       endsAt,
		GeneratorURL: e.drilldownURL(a.Labels),
		Fingerprint:  a.Fingerprint,
		Status:       status,
	}
}

// drilldownURL is the drill-down of the alert's moment and channel (and filters), or the page
// of an observed alert.
func (e *Evaluator) drilldownURL(labels map[string]string) string {
	if o := e.observer(labels["alertname"]); o != nil {
		return e.opts.PublicURL + o.Page()
	}
	q := url.Values{}
	for _, name := range append([]string{"moment", "channel"}, alert.FilterNames...) {
		if v := labels[name]; v != "" {
			q.Set(name, v)
		}
	}
	return e.opts.PublicURL + "/drilldown?" + q.Encode()
}

// publish keeps the engine's active alerts for the screens (Engine.Active: firing first) and
// returns them. The engine is read under publishMu, so the last snapshot stored is the newest.
func (e *Evaluator) publish() []alert.Alert {
	e.publishMu.Lock()
	defer e.publishMu.Unlock()
	active := e.engine.Active()
	e.active.Store(&active)
	return active
}

// MaxSilences bounds the silences in force at once: each is checked against every alert at
// every evaluation.
const MaxSilences = 1000

// ErrTooManySilences refuses a silence beyond MaxSilences.
var ErrTooManySilences = fmt.Errorf("%d silences are in force: expire some before adding another", MaxSilences)

// Acknowledge marks a pending or firing alert as seen by someone, and records it in the
// history; it stays acknowledged until it resolves.
func (e *Evaluator) Acknowledge(ctx context.Context, fingerprint, by string) (alert.Transition, error) {
	t, err := e.engine.Acknowledge(fingerprint, by)
	if err != nil {
		return t, err
	}
	e.publish()
	if err := e.store.AppendAlertTransitions(ctx, []alert.Transition{t}); err != nil {
		return t, fmt.Errorf("acknowledged, but not recorded in the history: %w", err)
	}
	return t, nil
}

// Silence mutes the alerts matching every matcher until until, and records the silence so
// that a restart keeps it.
func (e *Evaluator) Silence(ctx context.Context, matchers []alert.Matcher, until time.Time, reason string) (alert.Silence, error) {
	if len(e.engine.Silences()) >= MaxSilences {
		return alert.Silence{}, ErrTooManySilences
	}
	s, err := e.engine.Silence(matchers, until, reason)
	if err != nil {
		return s, err
	}
	e.publish() // the screens and GET /v1/alerts show the alerts silenced at once
	if err := e.store.AddAlertSilence(ctx, s); err != nil {
		return s, fmt.Errorf("silenced, but not recorded (a restart would forget it): %w", err)
	}
	return s, nil
}

// Expire ends a silence now, and records its end.
func (e *Evaluator) Expire(ctx context.Context, id string) (alert.Silence, error) {
	s, err := e.engine.Expire(id)
	if err != nil {
		return s, err
	}
	e.publish()
	if err := e.store.AddAlertSilence(ctx, s); err != nil {
		return s, fmt.Errorf("silence ended, but not recorded (a restart would bring it back): %w", err)
	}
	return s, nil
}

// ErrRulesNotKept is the error of ReplaceRules when the rules could not be written to disk;
// the rules in force are unchanged.
var ErrRulesNotKept = errors.New("the alert rules could not be kept on disk; nothing changed")

// ReplaceRules replaces the rules with those of data (the JSON of a rules file, docs/alerts.md)
// and keeps them in Options.RulesFile. Alerts of rules that are gone resolve at the next
// evaluation. A rule that is not valid is refused with an *alert.RuleError naming it.
func (e *Evaluator) ReplaceRules(data []byte) ([]alert.Rule, error) {
	if e.opts.RulesFile == "" {
		return nil, ErrRulesFromFile
	}
	rules, err := alert.ParseRules(data)
	if err != nil {
		return nil, err
	}
	// Kept first: rules in force that a restart would forget would be a surprise.
	if err := writeFileSynced(e.opts.RulesFile, data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRulesNotKept, err)
	}
	if err := e.engine.SetRules(rules); err != nil {
		return nil, err
	}
	return e.engine.Rules(), nil
}

// writeFileSynced replaces path with data through a synced temporary file and a rename, so a
// crash leaves the old file or the new one, never half of one.
func writeFileSynced(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// annotate writes the annotation of every alert that fired or resolved in ts. Its id comes
// from the alert's fingerprint and the time it went pending, so the resolve rewrites the
// annotation of the firing, and nodes that evaluate the same alert write the same one.
func (e *Evaluator) annotate(ctx context.Context, ts []alert.Transition) {
	if e.opts.Annotations == nil {
		return
	}
	for _, t := range ts {
		if t.To != alert.Firing && (t.To != alert.Resolved || t.From != alert.Firing) {
			continue
		}
		if e.observer(t.Alert.Labels["alertname"]) != nil {
			continue // a screen gone silent says nothing of customers: the trend charts skip it
		}
		a := AlertAnnotation(t)
		if err := e.opts.Annotations.WriteAnnotation(ctx, a, t.At, false); err != nil {
			e.log.Warn("alert not annotated", "fingerprint", t.Alert.Fingerprint, "err", err)
		}
	}
}

// AlertAnnotation is the annotation of a transition to firing (a mark at the firing) or from
// firing to resolved (the region from the firing to the resolve).
func AlertAnnotation(t alert.Transition) annotation.Annotation {
	a := &t.Alert
	h := fnv.New64a()
	h.Write([]byte(a.Fingerprint + "@" + a.ActiveAt.UTC().Format(time.RFC3339Nano)))
	fired := a.FiredAt
	if fired.IsZero() {
		fired = t.At
	}
	name, summary := a.Labels["alertname"], a.Annotations["summary"]
	out := annotation.Annotation{
		ID: fmt.Sprintf("%016x", h.Sum64()), Time: fired.UnixMilli(), TimeEnd: fired.UnixMilli(),
		Tags: []string{"alert"}, Moment: a.Labels["moment"], Channel: a.Labels["channel"],
		Created: fired.UnixMilli(), Updated: t.At.UnixMilli(),
	}
	if m := a.Labels["metric"]; m != "" {
		out.Tags = append(out.Tags, m)
	}
	out.Text = "Alert " + name + " fired: " + summary
	if t.To == alert.Resolved {
		out.TimeEnd = max(t.At.UnixMilli(), out.Time)
		out.Text = "Alert " + name + " fired, then resolved: " + summary
	}
	if r := []rune(out.Text); len(r) > annotation.MaxText {
		out.Text = string(r[:annotation.MaxText-1]) + "…"
	}
	return out
}
