package demo

import (
	"math"
	"math/rand/v2"
	"time"
)

// The constants and tables of the simulation model; the package comment explains them.

// Compression is how much faster than real life a journey unfolds: one customer day passes in
// 30 seconds of the clock, so a journey of two to four weeks takes 7 to 15 minutes and every
// moment of truth shows up on the dashboards soon after the demo starts. Durations measured
// inside one interaction (wait_ms, handle_ms) are not compressed.
const Compression = 2880

const (
	customerDay = 24 * time.Hour / Compression // one customer day on the clock: 30 s

	// warmup is how far before the start the simulation begins, so that journeys are already
	// in flight at the start and the rate and the moment mix are steady from the first second.
	// 40 customer days cover nearly every journey: 99.9% end within 31 days.
	warmup = 40 * customerDay

	diurnalAmplitude = 0.6 // rate swings between 0.4 and 1.6 times the mean
	diurnalPeakHour  = 14

	qualityNoise     = 0.06 // per touchpoint, around the journey's hidden quality
	latentNoise      = 0.10 // per score, around the touchpoint's quality
	outagePenalty    = 0.12 // quality lost on a channel in outage
	outageWaitFactor = 4.0  // waits on a channel in outage
	outageFailShare  = 0.15 // contacts that fail outright (abandoned, failed) in an outage
	outageSwitch     = 0.40 // customers who switch to a neighbouring channel in an outage
	spikeWaitFactor  = 2.5  // waits on a channel in a spike
	spikeJourneys    = 0.35 // extra journeys per second per event/s of rate during a spike
	maxContacts      = 6    // service contacts per journey at most

	lateMin = 2 * time.Minute
	lateMax = 6 * time.Hour
	dupMin  = time.Second // a source re-sends 1–30 s after the first send
	dupMax  = 30 * time.Second
)

// Dimensions. region, product and segment belong to the customer; agent_team to a contact.
var (
	regions  = newMix([]string{"north", "south", "east", "west", "central"}, []float64{22, 26, 18, 20, 14})
	products = newMix([]string{"broadband", "mobile", "tv", "smart_home"}, []float64{35, 35, 18, 12})
	segments = newMix([]string{"consumer", "small_business", "enterprise"}, []float64{72, 20, 8})

	// dimensionOffset shifts the hidden quality a little, so the filters find something.
	dimensionOffset = map[string]float64{
		"east": -0.04, "west": 0.01,
		"tv": -0.03, "smart_home": -0.02,
		"small_business": -0.02, "enterprise": 0.02,
	}
)

// Channels per moment, in percent.
var (
	zmotChannels    = newMix([]string{"web", "social", "review_site", "app"}, []float64{50, 20, 18, 12})
	fmotChannels    = newMix([]string{"web", "app", "store"}, []float64{45, 25, 30})
	serviceChannels = newMix([]string{"ivr", "voice", "chat", "messaging", "email"}, []float64{20, 35, 22, 10, 13})
	surveyChannels  = newMix([]string{"email", "app", "messaging"}, []float64{60, 25, 15})
	repeatChannels  = fmotChannels

	zmotTouchpoints = map[string]mix{
		"web":         newMix([]string{"search", "product_page", "plan_comparison", "coverage_check"}, []float64{35, 35, 18, 12}),
		"app":         newMix([]string{"app_browse", "product_page"}, []float64{60, 40}),
		"social":      newMix([]string{"social_ad", "social_post"}, []float64{55, 45}),
		"review_site": newMix([]string{"review_read"}, []float64{1}),
		"store":       newMix([]string{"store_browse"}, []float64{1}), // web or app customers who switch in an outage
	}
	fmotTouchpoint = map[string]string{"web": "checkout", "app": "in_app_checkout", "store": "store_checkout"}

	// Per-channel quality offsets: channels differ a little, so the consistency index is not
	// trivially 1 (IVR and email a little worse, app and store a little better).
	channelOffset = map[string]float64{
		"web": 0.02, "app": 0.04, "store": 0.03, "voice": -0.03, "ivr": -0.08, "chat": 0.01,
		"messaging": 0, "email": -0.04, "social": -0.05, "review_site": -0.02, "field_service": -0.01,
	}

	// alternatives are where customers go when a channel is down.
	alternatives = map[string][]string{
		"voice": {"chat", "messaging", "email"}, "ivr": {"voice", "chat"},
		"chat": {"voice", "messaging"}, "messaging": {"chat", "voice"}, "email": {"chat", "voice"},
		"web": {"app", "store"}, "app": {"web", "store"}, "store": {"web", "app"},
		"social": {"review_site"}, "review_site": {"social"},
		// field_service has none: a technician cannot be replaced by a chat.
	}

	devices = map[string]mix{
		"web": newMix([]string{"desktop", "mobile", "tablet"}, []float64{48, 45, 7}),
		"app": newMix([]string{"ios", "android"}, []float64{45, 55}),
	}
)

// Service contacts: why the customer gets in touch, and the team that answers.
const (
	reasonBilling = iota
	reasonTechnical
	reasonAccount
	reasonCancellation
	reasonEscalation
)

var (
	reasonNames = []string{"billing", "tech_support", "account", "cancellation", "escalation"}
	reasonTeams = []string{"billing", "technical", "customer_care", "retention", "escalations"}
	// reasons after delivery, by share; escalation is never a first reason.
	contactReasons    = newMix([]string{"billing", "tech_support", "account", "cancellation"}, []float64{45, 30, 15, 10})
	touchpointSuffix  = map[string]string{"voice": "_call", "chat": "_chat", "messaging": "_message", "email": "_email"}
	notResolved       = newMix([]string{"unresolved", "transferred", "escalated"}, []float64{45, 30, 25})
	escalationChannel = newMix([]string{"voice", "email"}, []float64{60, 40})
)

// contactProfile holds the distributions of one contact channel, in seconds, log-normal with a
// median and a sigma. Voice queues take minutes, chat seconds, messaging minutes and email hours;
// patience 0 means the customer does not give up (email).
type contactProfile struct {
	wait, patience, handle logNormal
}

var contactProfiles = map[string]contactProfile{
	"voice":     {wait: logNormal{60, 0.9}, patience: logNormal{360, 0.8}, handle: logNormal{390, 0.5}},
	"ivr":       {wait: logNormal{3, 0.5}, patience: logNormal{90, 0.6}, handle: logNormal{80, 0.5}},
	"chat":      {wait: logNormal{20, 0.9}, patience: logNormal{180, 0.8}, handle: logNormal{600, 0.5}},
	"messaging": {wait: logNormal{240, 1.1}, patience: logNormal{7200, 1.0}, handle: logNormal{900, 0.7}},
	"email":     {wait: logNormal{3 * 3600, 0.8}, handle: logNormal{480, 0.6}},
}

// Field service visits, in seconds.
var (
	installVisit = logNormal{90 * 60, 0.4}
	deliveryStop = logNormal{5 * 60, 0.5}
	deliveryCall = logNormal{2 * 60, 0.4}
)

// logNormal is a log-normal distribution given by its median and the sigma of its logarithm.
type logNormal struct{ median, sigma float64 }

func (d logNormal) draw(r *rand.Rand) float64 {
	return d.median * math.Exp(d.sigma*r.NormFloat64())
}

// mix picks one of some names with given weights.
type mix struct {
	names []string
	cum   []float64 // cumulative weights normalised to end at 1
}

func newMix(names []string, weights []float64) mix {
	if len(names) != len(weights) || len(names) == 0 {
		panic("demo: mix needs one weight per name")
	}
	var sum float64
	for _, w := range weights {
		sum += w
	}
	m := mix{names: names, cum: make([]float64, len(weights))}
	var acc float64
	for i, w := range weights {
		acc += w
		m.cum[i] = acc / sum
	}
	m.cum[len(m.cum)-1] = 1
	return m
}

func (m mix) pick(r *rand.Rand) string { return m.at(r.Float64()) }

// at picks by a uniform number u in [0, 1): the same u gives the same name.
func (m mix) at(u float64) string {
	for i, c := range m.cum {
		if u < c {
			return m.names[i]
		}
	}
	return m.names[len(m.names)-1]
}

// betaDraw draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
func betaDraw(r *rand.Rand, a, b float64) float64 {
	x, y := gammaDraw(r, a), gammaDraw(r, b)
	return x / (x + y)
}

// gammaDraw draws from Gamma(shape, 1) for shape >= 1 (Marsaglia and Tsang, 2000).
func gammaDraw(r *rand.Rand, shape float64) float64 {
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// diurnal is the rate multiplier at t: a sinusoid over the day of t's location, peak at 14:00,
// trough at 02:00, mean 1 over a day.
func diurnal(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	return 1 + diurnalAmplitude*math.Cos(2*math.Pi*(h-diurnalPeakHour)/24)
}

// splitmix64 hashes x; it derives stable per-customer attributes from the customer number.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

func clamp01(x float64) float64 { return min(1, max(0, x)) }
