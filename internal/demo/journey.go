package demo

import (
	"math"
	"strconv"
	"time"

	"github.com/truthboard/truthboard/internal/event"
)

type phase uint8

const (
	phaseZMOT phase = iota
	phaseFMOT
	phaseSMOT
	phaseService
	phaseTMOT
	phaseDone
)

// Steps of the smot phase.
const (
	smotNotice uint8 = iota // delivery notification or order tracking
	smotCall                // the technician or courier calls ahead
	smotVisit               // installation visit or delivery
)

// Feedback planned for the tmot phase, sent in this order.
const (
	tmotSurvey uint8 = 1 << iota
	tmotReview
	tmotSocial
	tmotRepeat
)

const customerPool = 1_000_000

// journey is one customer's way through the moments of truth, simulated one event at a time.
type journey struct {
	no       uint64 // journey number in the run
	customer int
	region   string
	product  string
	segment  string
	q        float64 // hidden quality in [0, 1]: every score of the journey is drawn around it
	phase    phase
	step     uint8  // smot: the smotX step; tmot: the feedback still to send
	left     int    // zmot sessions left
	attempts int    // fmot attempts
	contacts int    // service contacts
	reason   int    // of the current service contact
	channel  string // channel of the next event; "" draws one from the moment's mix
	install  bool   // the product needs an installation visit
	spike    bool   // an extra customer of a spike incident: one episode, no follow-up
	events   int    // events so far
	next     int64  // when the next event is due
}

// newJourney starts a journey: 55% are new customers who research first (zmot), 10% walk into
// a store and buy (fmot), 35% are existing customers who contact the service.
func (g *Generator) newJourney() *journey {
	g.journeys++
	c := g.rng.IntN(customerPool)
	h := splitmix64(uint64(c)) // the customer's region and segment never change
	j := &journey{
		no:       g.journeys,
		customer: c,
		region:   regions.at(unit(h)),
		segment:  segments.at(unit(splitmix64(h))),
		product:  products.pick(g.rng),
	}
	j.q = clamp01(betaDraw(g.rng, 6, 2) + dimensionOffset[j.region] + dimensionOffset[j.product] + dimensionOffset[j.segment])
	switch u := g.rng.Float64(); {
	case u < 0.55:
		j.phase = phaseZMOT
		j.left = 1 + int(g.rng.ExpFloat64()*1.2) // 1–5 research sessions, mean about 1.8
		j.left = min(j.left, 5)
	case u < 0.65:
		j.phase = phaseFMOT
	default:
		j.phase = phaseService
		j.reason = g.pickReason()
	}
	return j
}

// newSpikeJourney is an extra customer brought by a spike on the channel: a contact for the
// contact-centre channels, a visit, purchase, delivery or review for the others.
func (g *Generator) newSpikeJourney(channel string) *journey {
	j := g.newJourney()
	j.spike, j.channel, j.step = true, channel, 0
	switch channel {
	case "web", "app":
		j.phase, j.left = phaseZMOT, 1
	case "store":
		j.phase = phaseFMOT
	case "field_service":
		j.phase, j.step = phaseSMOT, smotVisit
	case "social":
		j.phase, j.step, j.channel = phaseTMOT, tmotSocial, ""
	case "review_site":
		j.phase, j.step, j.channel = phaseTMOT, tmotReview, ""
	default:
		j.phase = phaseService
		j.reason = reasonBilling // e.g. a wrong bill sent to many customers
		if g.chance(0.4) {
			j.reason = reasonTechnical
		}
	}
	return j
}

// step returns the journey's event at at and sets its next phase and time.
func (g *Generator) step(j *journey, at int64) event.Event {
	switch j.phase {
	case phaseZMOT:
		return g.zmot(j, at)
	case phaseFMOT:
		return g.fmot(j, at)
	case phaseSMOT:
		return g.smot(j, at)
	case phaseService:
		return g.service(j, at)
	case phaseTMOT:
		return g.tmot(j, at)
	}
	panic("demo: step of a finished journey")
}

func (g *Generator) zmot(j *journey, at int64) event.Event {
	ch := g.channel(j, zmotChannels)
	ch, down := g.route(ch, at, alternatives[ch])
	e := g.newEvent(j, at, "zmot", "initial_contact", ch, zmotTouchpoints[ch].pick(g.rng))
	q := g.quality(j, ch, down)
	switch ch {
	case "web", "app", "store":
		if g.chance(0.12) { // intercept survey
			e.CSAT = g.csat(q)
		}
		if g.chance(0.08) {
			e.CES = g.ces(q)
		}
	case "social":
		if g.chance(0.6) {
			e.Sentiment = g.sentiment(q)
		}
	}
	if down && g.chance(0.5) {
		e.Outcome = "failed" // the page did not load
	}
	j.left--
	switch {
	case j.spike:
		j.phase = phaseDone
	case j.left > 0:
		j.next = at + g.expDays(0.5)
	case g.chance(0.6 + 0.5*(j.q-0.75)): // buys
		j.phase, j.next = phaseFMOT, at+g.days(0.2, 5)
	default:
		j.phase = phaseDone
	}
	return e
}

func (g *Generator) fmot(j *journey, at int64) event.Event {
	ch := g.channel(j, fmotChannels)
	ch, down := g.route(ch, at, alternatives[ch])
	e := g.newEvent(j, at, "fmot", "purchase", ch, fmotTouchpoint[ch])
	q := g.quality(j, ch, down)
	fail := 0.03 + 0.08*(1-q)
	if down {
		fail += 0.5
	}
	failed := g.chance(fail)
	e.Outcome = "completed"
	if failed {
		e.Outcome, q = "failed", q-0.25
	}
	if g.chance(0.3) {
		e.CSAT = g.csat(q)
	}
	if g.chance(0.3) {
		e.CES = g.ces(q)
	}
	j.attempts++
	switch {
	case j.spike:
		j.phase = phaseDone
	case !failed:
		j.install = j.product != "mobile" && g.chance(0.8)
		j.phase, j.step, j.next = phaseSMOT, smotNotice, at+g.days(0.5, 4)
	case j.attempts < 2 && g.chance(0.65): // tries another channel
		alts := alternatives[ch]
		j.channel, j.next = alts[g.rng.IntN(len(alts))], at+g.days(0.05, 0.5)
		j.q = clamp01(j.q - 0.05)
	case g.chance(0.3): // asks the contact centre
		j.phase, j.reason, j.next = phaseService, reasonAccount, at+g.days(0.05, 1)
		j.q = clamp01(j.q - 0.05)
	default:
		j.phase = phaseDone
	}
	return e
}

func (g *Generator) smot(j *journey, at int64) event.Event {
	if j.step == smotNotice {
		ch := "email"
		if g.chance(0.4) {
			ch = "app"
		}
		other := []string{"app"}
		if ch == "app" {
			other = []string{"email"}
		}
		ch, down := g.route(ch, at, other)
		tp := "delivery_notification"
		if ch == "app" {
			tp = "order_tracking"
		}
		e := g.newEvent(j, at, "smot", "delivery_installation", ch, tp)
		q := g.quality(j, ch, down)
		if ch == "app" && g.chance(0.1) {
			e.CSAT = g.csat(q)
		}
		if g.chance(0.05) {
			e.CES = g.ces(q)
		}
		j.step, j.next = smotVisit, at+g.days(0.5, 3)
		if j.install && g.chance(0.5) {
			j.step = smotCall
		}
		return e
	}

	_, down := g.route("field_service", at, nil)
	q := g.quality(j, "field_service", down)
	if j.step == smotCall {
		e := g.newEvent(j, at, "smot", "delivery_installation", "field_service", "delivery_call")
		e.Outcome = "completed"
		if down && g.chance(0.5) {
			e.Outcome = "failed"
		}
		e.HandleMS = durationMS(deliveryCall.draw(g.rng))
		j.step, j.next = smotVisit, at+g.days(0.1, 1)
		return e
	}

	tp, visit := "delivery", deliveryStop
	if j.install {
		tp, visit = "install_visit", installVisit
	}
	e := g.newEvent(j, at, "smot", "delivery_installation", "field_service", tp)
	fail := 0.04 + 0.15*(1-q)
	if down {
		fail += 0.5
	}
	failed := g.chance(fail)
	e.Outcome = "completed"
	if failed {
		e.Outcome, q = "failed", q-0.25
	}
	e.HandleMS = durationMS(visit.draw(g.rng))
	if g.chance(0.5) {
		e.CSAT = g.csat(q)
	}
	switch {
	case j.spike:
		j.phase = phaseDone
	case failed:
		j.q = clamp01(j.q - 0.1)
		if g.chance(0.9) {
			j.phase, j.reason, j.next = phaseService, reasonTechnical, at+g.days(0.05, 1)
		} else {
			g.toTMOT(j, at, 2, 10)
		}
	case g.chance(0.35 + 0.35*(1-j.q)):
		j.phase, j.reason, j.next = phaseService, g.pickReason(), at+g.days(1, 10)
	default:
		g.toTMOT(j, at, 2, 10)
	}
	return e
}

func (g *Generator) service(j *journey, at int64) event.Event {
	ch := g.channel(j, serviceChannels)
	ch, down := g.route(ch, at, alternatives[ch])
	reason := reasonNames[j.reason]
	tp := reason + touchpointSuffix[ch]
	if ch == "ivr" {
		tp = "ivr_" + reason
	}
	e := g.newEvent(j, at, "service", "service_interaction", ch, tp)
	if ch != "ivr" { // nobody answers in the IVR
		e.AgentTeam = reasonTeams[j.reason]
	}
	j.contacts++
	if j.contacts > 1 && !g.warming {
		e.Attributes = map[string]string{"contact_attempt": strconv.Itoa(j.contacts)}
	}

	p := contactProfiles[ch]
	load := 1.0
	switch {
	case down:
		load = outageWaitFactor
	case g.spiking(ch, at):
		load = spikeWaitFactor
	}
	wait := p.wait.draw(g.rng) * load
	// A long wait spoils the contact: up to 0.2 of quality for e²≈7.4 times the usual wait.
	q := g.quality(j, ch, down) - 0.1*min(2, max(0, math.Log(wait/p.wait.median)))
	var patience, handle float64
	if p.patience.median > 0 {
		patience = p.patience.draw(g.rng)
	}
	switch {
	case down && g.chance(outageFailShare):
		e.Outcome = "abandoned"
		if ch == "email" {
			e.Outcome = "failed"
		}
	case p.patience.median > 0 && wait > patience:
		e.Outcome, wait = "abandoned", patience // hung up after waiting as long as they would
	case ch == "ivr":
		handle = p.handle.draw(g.rng)
		e.Outcome = "transferred"
		if g.chance(0.2 + 0.35*q) {
			e.Outcome = "resolved" // self-service
		}
	default:
		handle = p.handle.draw(g.rng)
		e.Outcome = "resolved"
		if !g.chance(0.15 + 0.75*q) {
			e.Outcome = notResolved.pick(g.rng)
		}
	}
	e.WaitMS = durationMS(wait)
	if handle > 0 {
		e.HandleMS = durationMS(handle)
	}

	switch e.Outcome {
	case "abandoned", "failed":
		if g.chance(0.15) { // a text message asks how it went
			e.CSAT = g.csat(q - 0.15)
		}
	default:
		if g.chance(0.35) {
			e.CSAT = g.csat(q)
		}
		if g.chance(0.25) {
			e.CES = g.ces(q)
		}
	}

	switch e.Outcome {
	case "resolved":
		j.q = clamp01(j.q + 0.04)
		g.toTMOT(j, at, 1, 7)
	case "transferred":
		if ch == "ivr" {
			j.channel = "voice"
		} else {
			j.channel, j.reason = ch, g.pickReason()
		}
		j.next = at + int64(time.Second) // right away
	case "escalated":
		j.reason, j.channel, j.next = reasonEscalation, escalationChannel.pick(g.rng), at+g.days(0.5, 3)
	default: // unresolved, abandoned, failed
		j.q = clamp01(j.q - 0.06)
		if g.chance(0.6) { // tries again, on the same channel half of the time
			if g.chance(0.5) {
				j.channel = ch
			}
			j.next = at + g.days(0.02, 2)
		} else {
			g.toTMOT(j, at, 2, 10)
		}
	}
	if j.phase == phaseService && j.contacts >= maxContacts {
		j.channel = ""
		g.toTMOT(j, at, 2, 10)
	}
	return e
}

// toTMOT plans the journey's final opinions, lo to hi customer days later. A third of the
// customers give none; unhappy and delighted ones write reviews more often.
func (g *Generator) toTMOT(j *journey, at int64, lo, hi float64) {
	if j.spike || g.chance(0.35) {
		j.phase = phaseDone
		return
	}
	var plan uint8
	if g.chance(0.8) {
		plan |= tmotSurvey
	}
	if g.chance(0.08 + 0.5*math.Abs(j.q-0.6)) {
		plan |= tmotReview
	}
	if g.chance(0.05 + 0.2*(1-j.q)) {
		plan |= tmotSocial
	}
	if g.chance(0.2 * j.q) {
		plan |= tmotRepeat
	}
	if plan == 0 {
		plan = tmotSurvey
	}
	j.phase, j.step, j.channel, j.next = phaseTMOT, plan, "", at+g.days(lo, hi)
}

func (g *Generator) tmot(j *journey, at int64) event.Event {
	const moment, stage = "tmot", "post_purchase_follow_up"
	var e event.Event
	switch {
	case j.step&tmotSurvey != 0:
		j.step &^= tmotSurvey
		ch := surveyChannels.pick(g.rng)
		var others []string
		for _, c := range surveyChannels.names {
			if c != ch {
				others = append(others, c)
			}
		}
		ch, down := g.route(ch, at, others)
		q := g.quality(j, ch, down)
		if g.chance(0.6) {
			tp := "nps_survey"
			if ch == "app" {
				tp = "in_app_survey"
			}
			e = g.newEvent(j, at, moment, stage, ch, tp)
			e.NPS = g.nps(q)
			if g.chance(0.4) {
				e.CSAT = g.csat(q)
			}
		} else {
			e = g.newEvent(j, at, moment, stage, ch, "csat_survey")
			e.CSAT = g.csat(q)
			if g.chance(0.5) {
				e.CES = g.ces(q)
			}
		}
	case j.step&tmotReview != 0:
		j.step &^= tmotReview
		ch, down := g.route("review_site", at, alternatives["review_site"])
		q := g.quality(j, ch, down)
		tp := "product_review"
		switch {
		case ch == "social":
			tp = "social_mention"
		case g.chance(0.3):
			tp = "app_review"
		}
		e = g.newEvent(j, at, moment, stage, ch, tp)
		if ch == "review_site" {
			e.CSAT = g.csat(q) // the star rating
		}
		e.Sentiment = g.sentiment(q)
	case j.step&tmotSocial != 0:
		j.step &^= tmotSocial
		ch, down := g.route("social", at, alternatives["social"])
		q := g.quality(j, ch, down)
		tp := "social_mention"
		if ch == "review_site" {
			tp = "product_review"
		}
		e = g.newEvent(j, at, moment, stage, ch, tp)
		e.Sentiment = g.sentiment(q)
	default:
		j.step &^= tmotRepeat
		ch := repeatChannels.pick(g.rng)
		ch, down := g.route(ch, at, alternatives[ch])
		q := g.quality(j, ch, down)
		e = g.newEvent(j, at, moment, stage, ch, "repeat_purchase")
		e.Outcome = "completed"
		if down && g.chance(0.5) {
			e.Outcome = "failed"
		}
		if g.chance(0.2) {
			e.CSAT = g.csat(q)
		}
	}
	if j.step == 0 || j.spike {
		j.phase = phaseDone
	} else {
		j.next = at + g.days(1, 7)
	}
	return e
}

// newEvent returns the journey's next event with its identity and dimensions filled in.
func (g *Generator) newEvent(j *journey, at int64, moment, stage, channel, touchpoint string) event.Event {
	j.events++
	if g.warming { // nothing is sent: spare the strings
		return event.Event{}
	}
	jid := g.prefix + "-" + strconv.FormatUint(j.no, 36)
	e := event.Event{
		EventID:    jid + "-" + strconv.Itoa(j.events),
		OccurredAt: time.Unix(0, at).UTC().Truncate(time.Millisecond),
		Moment:     moment,
		Channel:    channel,
		Touchpoint: touchpoint,
		Stage:      stage,
		CustomerID: "cust-" + strconv.Itoa(j.customer),
		JourneyID:  jid,
		Region:     j.region,
		Product:    j.product,
		Segment:    j.segment,
	}
	if d, ok := devices[channel]; ok && moment != "service" {
		e.Attributes = map[string]string{"device": d.pick(g.rng)}
	}
	return e
}

// channel returns the journey's forced channel, if any, or draws one from the mix.
func (g *Generator) channel(j *journey, m mix) string {
	if ch := j.channel; ch != "" {
		j.channel = ""
		return ch
	}
	return m.pick(g.rng)
}

// route sends a customer to one of the alternatives when the channel is in an outage (with
// probability outageSwitch); down reports whether the channel finally used is in an outage.
func (g *Generator) route(ch string, at int64, alts []string) (channel string, down bool) {
	if !g.active(ch, Outage, at) {
		return ch, false
	}
	if len(alts) > 0 && g.chance(outageSwitch) {
		alt := alts[g.rng.IntN(len(alts))]
		return alt, g.active(alt, Outage, at)
	}
	return ch, true
}

func (g *Generator) spiking(ch string, at int64) bool { return g.active(ch, Spike, at) }

func (g *Generator) active(ch string, kind IncidentKind, at int64) bool {
	for _, w := range g.windows {
		if w.channel == ch && w.kind == kind && at >= w.from && at < w.to {
			return true
		}
	}
	return false
}

// quality is the journey's hidden quality as felt at one touchpoint.
func (g *Generator) quality(j *journey, ch string, down bool) float64 {
	q := j.q + channelOffset[ch] + qualityNoise*g.rng.NormFloat64()
	if down {
		q -= outagePenalty
	}
	return q
}

func (g *Generator) pickReason() int {
	r := contactReasons.pick(g.rng)
	for i, name := range reasonNames {
		if name == r {
			return i
		}
	}
	panic("demo: unknown contact reason " + r)
}

// Scores: a latent satisfaction in [0, 1] around the touchpoint's quality, cut into the scale.

func (g *Generator) latent(q float64) float64 { return clamp01(q + latentNoise*g.rng.NormFloat64()) }

// likert maps the latent satisfaction to lo..lo+k-1 in k equal bands.
func (g *Generator) likert(q float64, lo, k int) *uint8 {
	v := uint8(lo + min(k-1, int(g.latent(q)*float64(k))))
	return &v
}

func (g *Generator) csat(q float64) *uint8 { return g.likert(q, 1, 5) }
func (g *Generator) ces(q float64) *uint8  { return g.likert(q, 1, 7) }
func (g *Generator) nps(q float64) *uint8  { return g.likert(q, 0, 11) }

func (g *Generator) sentiment(q float64) *float64 {
	s := math.Round((2*g.latent(q)-1)*100) / 100
	return &s
}

func (g *Generator) chance(p float64) bool { return g.rng.Float64() < p }

// days returns a uniform time between lo and hi customer days, on the clock.
func (g *Generator) days(lo, hi float64) int64 {
	return int64((lo + (hi-lo)*g.rng.Float64()) * float64(customerDay))
}

// expDays returns an exponential time with a mean of mean customer days, on the clock.
func (g *Generator) expDays(mean float64) int64 {
	return int64(g.rng.ExpFloat64() * mean * float64(customerDay))
}

// durationMS converts seconds to a wait_ms or handle_ms value.
func durationMS(seconds float64) *uint32 {
	v := uint32(min(float64(event.MaxDurationMS), max(0, math.Round(seconds*1000))))
	return &v
}
