package demo

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

// Bounds of the flags, checked by Validate.
const (
	// MaxRate bounds --rate. The simulator keeps every journey in flight in memory, about
	// 30 journeys (a few KiB) per event/s of rate, so 10,000 events/s is a few hundred MiB.
	MaxRate = 10_000
	// MaxShare bounds --duplicates and --late: above it the traffic is no longer realistic.
	MaxShare = 0.5
	// MaxBatchSize bounds --batch-size: the server takes at most 10,000 events per request
	// by default (event.DefaultMaxEvents).
	MaxBatchSize = 10_000
)

// Config is the configuration of `truthboard demo`. Start from DefaultConfig: the zero value is
// not usable (Rate 0 is rejected). Each field names its command-line flag; AddFlags binds them.
type Config struct {
	// URL is the base URL of the Truthboard server; events are posted to URL + "/v1/events".
	// Flag --url.
	URL string
	// Key is the ingest API key, sent as "Authorization: Bearer <key>". Flag --key.
	Key string
	// AdminToken, when set, marks each incident on the trend charts: at its start the demo
	// posts an annotation tagged "demo" to URL + "/v1/annotations", the region of the incident
	// on its channel. Flag --admin-token.
	AdminToken string
	// Rate is the mean number of new events per second, duplicates not counted. With Diurnal
	// the rate of the moment swings between 0.4 and 1.6 times it. Start-up simulates the
	// journeys already in flight, about half a second per 1,000 events/s. Flag --rate.
	Rate float64
	// Diurnal modulates the rate by the time of day of the clock: a sinusoid with its peak at
	// 14:00 and its trough at 02:00 whose mean over a day is Rate. Flag --diurnal (true by
	// default; --diurnal=false gives a flat rate).
	Diurnal bool
	// Incidents to inject, e.g. voice:outage:+2m:10m (see ParseIncident). Flag --incident,
	// repeatable.
	Incidents Incidents
	// DuplicateShare is the share of events sent a second time with the same event_id, as a
	// source does when it misses an acknowledgement. Flag --duplicates.
	DuplicateShare float64
	// LateShare is the share of events that arrive late: their occurred_at lies 2 minutes to
	// 6 hours before they are sent. Flag --late.
	LateShare float64
	// Seed makes a run reproducible: the same seed, start time and flags give the same events.
	// Flag --seed.
	Seed int64
	// BatchInterval is how often the due events are posted. Flag --batch-interval.
	BatchInterval time.Duration
	// BatchSize is the most events in one request; more due events go in several requests.
	// Flag --batch-size.
	BatchSize int
	// Gzip compresses request bodies (Content-Encoding: gzip). Flag --gzip.
	Gzip bool
	// Duration stops the run after this long; 0 runs until interrupted. Flag --duration.
	Duration time.Duration

	// Clock gives the current time; nil means time.Now. It is not a flag: tests set it.
	Clock func() time.Time
}

// DefaultConfig returns the defaults of every field, the only place they are written down.
func DefaultConfig() Config {
	return Config{
		URL:            "http://127.0.0.1:8080",
		Rate:           50,
		Diurnal:        true,
		DuplicateShare: 0.01,
		LateShare:      0.01,
		Seed:           1,
		BatchInterval:  250 * time.Millisecond,
		BatchSize:      1000,
	}
}

// AddFlags binds the fields of c to flags of fs, with the current values of c as defaults:
// call it on a DefaultConfig. The flag names are the ones Validate's errors mention.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "url", c.URL, "base `URL` of the Truthboard server (events go to URL/v1/events)")
	fs.StringVar(&c.Key, "key", c.Key, "ingest API `key` (sent as a bearer token)")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "admin `token`: when set, each incident is annotated on the charts (tagged demo)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "mean new `events` per second, duplicates not counted")
	fs.BoolVar(&c.Diurnal, "diurnal", c.Diurnal, "modulate the rate by time of day (peak 14:00, trough 02:00)")
	fs.Var(&c.Incidents, "incident", "inject an incident `channel:kind:+start:duration`, kind outage or spike, e.g. voice:outage:+2m:10m (repeatable)")
	fs.Float64Var(&c.DuplicateShare, "duplicates", c.DuplicateShare, "`share` of events re-sent with the same event_id")
	fs.Float64Var(&c.LateShare, "late", c.LateShare, "`share` of events that arrive 2 minutes to 6 hours late")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "random `seed`; the same seed and flags give the same traffic")
	fs.DurationVar(&c.BatchInterval, "batch-interval", c.BatchInterval, "post due events this `often`")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most `events` per request")
	fs.BoolVar(&c.Gzip, "gzip", c.Gzip, "gzip request bodies")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "stop after this `long` (0: run until interrupted)")
}

// Validate reports every invalid field at once, each naming its flag and how to fix it.
func (c *Config) Validate() error {
	var errs []error
	switch u, err := url.Parse(c.URL); {
	case c.URL == "":
		errs = append(errs, errors.New("--url is empty: give the server's base URL, e.g. --url http://127.0.0.1:8080"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("--url %q: want an absolute http or https URL, e.g. --url http://127.0.0.1:8080", c.URL))
	}
	if c.Key == "" {
		errs = append(errs, errors.New("--key is empty: give the ingest API key the server was configured with"))
	}
	errs = append(errs, c.validateModel()...)
	if c.BatchInterval < 10*time.Millisecond || c.BatchInterval > time.Minute {
		errs = append(errs, fmt.Errorf("--batch-interval %v: want 10ms to 1m, e.g. --batch-interval 250ms", c.BatchInterval))
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("--batch-size %d: want 1 to %d, e.g. --batch-size 1000", c.BatchSize, MaxBatchSize))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %v: want 0 (run until interrupted) or a positive duration such as 10m", c.Duration))
	}
	for _, inc := range c.Incidents {
		if c.Duration > 0 && inc.Start >= c.Duration {
			errs = append(errs, fmt.Errorf("--incident %s starts after --duration %v ends: start it earlier or run longer", inc, c.Duration))
		}
	}
	return errors.Join(errs...)
}

// validateModel checks the fields the Generator uses.
func (c *Config) validateModel() []error {
	var errs []error
	if !(c.Rate > 0 && c.Rate <= MaxRate) { // also rejects NaN
		errs = append(errs, fmt.Errorf("--rate %v: want events per second above 0 and at most %d, e.g. --rate 50", c.Rate, MaxRate))
	}
	if !(c.DuplicateShare >= 0 && c.DuplicateShare <= MaxShare) {
		errs = append(errs, fmt.Errorf("--duplicates %v: want a share from 0 to %v, e.g. --duplicates 0.01 for 1%%", c.DuplicateShare, MaxShare))
	}
	if !(c.LateShare >= 0 && c.LateShare <= MaxShare) {
		errs = append(errs, fmt.Errorf("--late %v: want a share from 0 to %v, e.g. --late 0.01 for 1%%", c.LateShare, MaxShare))
	}
	for _, inc := range c.Incidents {
		if err := inc.validate(); err != nil {
			errs = append(errs, fmt.Errorf("--incident: %w", err))
		}
	}
	return errs
}

// IncidentKind is what happens to a channel during an incident.
type IncidentKind string

const (
	// Outage: the channel partly fails. Its satisfaction falls, waits grow about sixfold,
	// a quarter of its contacts fail or are abandoned outright, and 40% of the customers who
	// would have used it switch to a neighbouring channel (more volume there).
	Outage IncidentKind = "outage"
	// Spike: a burst of extra customers on the channel (about half the mean rate again, e.g. a
	// billing error that makes people call), with waits about 2.5 times longer.
	Spike IncidentKind = "spike"
)

// Incident is one injected incident on one channel, for a window of the run.
type Incident struct {
	// Channel is one of event.Channels.
	Channel string
	// Kind is Outage or Spike.
	Kind IncidentKind
	// Start is the offset from the start of the run; at least 0.
	Start time.Duration
	// Duration is how long it lasts; above 0.
	Duration time.Duration
}

const incidentSyntax = "want channel:kind:+start:duration, e.g. voice:outage:+2m:10m"

// ParseIncident parses channel:kind:+start:duration, e.g. "voice:outage:+2m:10m" (a voice
// outage from 2 to 12 minutes into the run) or "chat:spike:+30s:5m". The channel is one of
// event.Channels, the kind outage or spike, start and duration Go durations; the + is optional.
func ParseIncident(s string) (Incident, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 4 {
		return Incident{}, fmt.Errorf("incident %q: %s", s, incidentSyntax)
	}
	inc := Incident{Channel: parts[0], Kind: IncidentKind(parts[1])}
	start, err := time.ParseDuration(strings.TrimPrefix(parts[2], "+"))
	if err != nil {
		return Incident{}, fmt.Errorf("incident %q: start %q is not a duration: use one like +2m or +90s", s, parts[2])
	}
	inc.Start = start
	if inc.Duration, err = time.ParseDuration(parts[3]); err != nil {
		return Incident{}, fmt.Errorf("incident %q: duration %q is not a duration: use one like 10m or 1h30m", s, parts[3])
	}
	if err := inc.validate(); err != nil {
		return Incident{}, fmt.Errorf("incident %q: %w", s, err)
	}
	return inc, nil
}

// String formats the incident in the syntax ParseIncident reads.
func (i Incident) String() string {
	return fmt.Sprintf("%s:%s:+%v:%v", i.Channel, i.Kind, i.Start, i.Duration)
}

func (i Incident) validate() error {
	switch {
	case !slices.Contains(event.Channels, i.Channel):
		return fmt.Errorf("unknown channel %q: want one of %s", i.Channel, strings.Join(event.Channels, ", "))
	case i.Kind != Outage && i.Kind != Spike:
		return fmt.Errorf("unknown kind %q: want %s or %s", i.Kind, Outage, Spike)
	case i.Start < 0:
		return fmt.Errorf("start %v is negative: incidents start at or after the start of the run, e.g. +0s", i.Start)
	case i.Duration <= 0:
		return fmt.Errorf("duration %v: want a positive duration such as 10m", i.Duration)
	}
	return nil
}

// Incidents is a repeatable flag.Value: each Set parses one incident and appends it.
type Incidents []Incident

// String joins the incidents with commas.
func (l *Incidents) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, inc := range *l {
		s[i] = inc.String()
	}
	return strings.Join(s, ",")
}

// Set parses one incident (see ParseIncident) and appends it.
func (l *Incidents) Set(s string) error {
	inc, err := ParseIncident(s)
	if err != nil {
		return err
	}
	*l = append(*l, inc)
	return nil
}
