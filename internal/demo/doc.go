// Package demo is the traffic simulator behind `truthboard demo`. It invents customer journeys
// of a subscription business (broadband, mobile, TV, smart home) and posts their events through
// the public API exactly as a real source would: POST {URL}/v1/events with a bearer key, NDJSON,
// optionally gzip, in batches every BatchInterval; on 429 and 503 it waits as Retry-After says
// and sends the same batch again (same event_ids: the server deduplicates). Run does the
// sending; Generator produces the same events without any I/O, for tests and benchmarks.
//
// # Journeys
//
// A journey is one customer's way through the moments of truth; every event carries its
// journey_id and customer_id (region and segment belong to the customer, product to the
// journey). Journeys start as a Poisson process. 55% are new customers who research first,
// 10% walk into a store and buy, 35% are existing customers who contact the service:
//
//   - zmot, stage initial_contact: 1 to 5 research sessions (web 50%, social 20%, review_site
//     18%, app 12%; touchpoints search, product_page, plan_comparison, coverage_check,
//     social_ad, review_read…), a few with an intercept survey. About 60% go on to buy
//     (more if the journey goes well): the others drop off.
//   - fmot, stage purchase: checkout on web 45%, app 25%, store 30%, outcome completed or
//     failed; after a failure 65% try another channel, some call the service, the rest leave.
//   - smot, stage delivery_installation: a delivery_notification (email) or order_tracking
//     (app), for installations often a delivery_call, then an install_visit or a delivery by
//     field_service (completed or failed, with handle_ms). A failed visit brings a service
//     contact; otherwise 35–70% of the customers get in touch later anyway.
//   - service, stage service_interaction: ivr 20%, voice 35%, chat 22%, messaging 10%, email
//     13%, for billing, tech_support, account or cancellation (agent_team billing, technical,
//     customer_care, retention; escalations after an escalation; no agent in the IVR).
//     wait_ms and handle_ms are log-normal per channel: voice waits about a minute (p90 3 min),
//     chat 20 s, messaging 4 min, email 3 hours, the IVR answers at once. A customer whose
//     wait exceeds their patience (voice median 6 min, chat 3 min) abandons. Otherwise the
//     contact is resolved (more likely the better the journey goes), unresolved, transferred
//     (the IVR hands over to voice), or escalated. Unresolved and abandoned customers try
//     again 60% of the time; at most 6 contacts.
//   - tmot, stage post_purchase_follow_up: a third give no opinion at all; the others answer an
//     nps_survey or csat_survey (email, in_app_survey, SMS on messaging), and some write a
//     product_review or app_review (review_site, stars as csat, with sentiment), a
//     social_mention (sentiment) or buy again (repeat_purchase).
//
// # Scores
//
// Each journey has a hidden quality q in [0, 1], Beta(6, 2) (mean 0.75), shifted a little by
// region, product and segment (east, tv, small_business a bit worse). Every csat, nps, ces,
// sentiment and outcome of the journey is drawn around it, so one journey's scores agree: a
// touchpoint feels q plus a per-channel offset (ivr -0.08 … app +0.04, so the channels of a
// moment differ a little and the consistency index is not trivially 1), plus noise; a long wait
// lowers it; each score is then a noisy latent value cut into the scale's bands (csat 1–5,
// nps 0–10, ces 1–7 where 7 is easiest, sentiment -1..1). Experiences feed back: a failure or
// an unresolved contact lowers q for the rest of the journey, a resolution raises it. In steady
// state CSAT top-2-box is about 73% (service 59%, voice 57%), NPS about +8, voice abandonment 7%.
//
// # Time
//
// Journeys are compressed (see Compression): one customer day passes in 30 s of the clock, so
// a journey of two to four weeks takes 7 to 15 minutes and all moments show up soon after the
// start. wait_ms and handle_ms are not compressed. occurred_at is the simulated time, which Run
// takes from its clock: events are sent when they happen. The simulation starts 20 minutes
// before the start and sends nothing until then, so the rate and the mix are steady from the
// first second (start-up takes about half a second per 1,000 events/s of Rate).
//
// The rate: journeys start at Rate divided by the mean number of events of a journey (about
// 3.9), so that new events come at Rate per second on average. With Diurnal the journey rate
// follows 1 + 0.6 cos(2π(h-14)/24) of the hour h of the clock: 1.6 times Rate at 14:00,
// 0.4 times at 02:00, Rate on average over a day.
//
// Imperfect sources: DuplicateShare of the events are sent again 1 to 30 s later with the same
// event_id and content; LateShare of them carry an occurred_at 2 minutes to 6 hours (log-uniform)
// before the time they are sent.
//
// # Incidents
//
// An incident (see ParseIncident) affects one channel for a window of the run. During an outage,
// 40% of the customers who would use the channel switch to a neighbouring one (voice to chat,
// messaging or email; web to app or store…; field_service has none), so volume rises there.
// On the channel itself quality falls by 0.12, waits grow fourfold (so more customers abandon),
// 15% of contacts fail outright and purchases, visits and page loads often fail. With the
// defaults a voice outage takes voice CSAT top-2-box from about 58% to 20% and abandonment
// from 7% to 45%. A spike brings extra customers to the channel at about half of Rate on top,
// and makes its waits 2.5 times longer.
//
// # Reproducibility
//
// All randomness comes from Seed. event_id and journey_id carry the start time and the seed
// ("demo-<start>-<seed>-<journey>[-<n>]"), so a second run does not collide with the first;
// customer_id ("cust-<n>") repeats across runs, as customers do.
package demo
