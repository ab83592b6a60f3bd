// Package alert says when a moment of truth breaks: it judges rules on the rollup counts of
// every moment × channel at each evaluation, and moves each alert through pending → firing →
// resolved. It is pure logic: the counts come in (Engine.Queries says what to read,
// internal/store reads it), transitions and active alerts go out (to the history in
// ClickHouse and to delivery); acknowledgements and silences are kept here and stored by the
// caller.
//
// # Rules
//
// A rule watches one metric (csat, nps, ces, negative_rate, abandonment, wait_p90, volume) in
// every moment × channel of its scope (a moment, a channel and filters narrow it), over a
// window. Only the bad direction is watched: drops of CSAT, NPS, CES and volume, rises of the
// negative rate, abandonment and wait p90. Two kinds:
//
//   - target: the figure against a fixed value (CSAT >= 80% over 15 minutes). It fires only
//     when the whole 95% interval is on the wrong side (Wilson's for shares, the normal one for
//     NPS and CES means, the order-statistic one for the p90, the Poisson score interval for
//     volume), and recovers when the figure itself is back on the right side.
//   - change: the window against a baseline, the trailing hours before it or the same window a
//     week earlier. It fires only when the test's p-value is below Alpha, in the bad direction,
//     AND the change is at least MinChange, AND both periods have their minimum n. It recovers
//     when p >= RecoveryP (0.05) or the change falls below half of MinChange.
//
// The tests are those of internal/metric (TwoProportions, NPSChange, CESChange, QuantileShift,
// PoissonRate): the screens colour with the same ones. CES uses the largest variance its mean
// allows (the rollups keep no sum of squares), so a CES alert needs a larger change or more
// answers than the data alone would.
//
// Those tests take answers as independent, and real ones are not: one unhappy customer writes
// three reviews, a campaign brings another crowd for an hour. So the baseline is also read in
// parts of the window's length (up to 15 minutes: 12 parts of a 3-hour baseline), and when the
// figure varies between them more than their n explains (metric.Overdispersion, φ > 1), the
// test's standard error is widened by sqrt(φ), as a p′-chart widens its limits: a level the
// baseline reaches every half hour is no alert.
//
// # Multiplicity
//
// The default rules test about 330 cells (6 metrics × 5 moments × 11 channels) at every
// evaluation, so a level of 0.05 would raise some 16 false alarms per window of steady
// traffic. DefaultAlpha is 0.00001, a tenth of 0.05/330 (Bonferroni per window): a window
// turns over about 4 times an hour, and in thin cells, where the minimum change does not
// protect, 0.05/330 let about one false alarm through every five days of steady demo traffic
// (truthboard-tools alert-bench, docs/benchmarks.md). The tests keep their
// real false-positive rate within 1.5 times the nominal one from 30 answers up (measured by
// exact enumeration in internal/metric), and the minimum change and the pending period cut it
// further: a chance excursion must also be large and last. A drop of 20 CSAT points (80% to
// 60%) is found at this level from about 85 answers in the window.
//
// # States
//
// For each rule and cell: inactive → pending when the condition holds → firing once it has held
// for For (2 minutes) → resolved once the separate recovery condition has held for
// KeepFiringFor (2 minutes). A pending alert whose condition goes away drops back to inactive
// without ever firing. Between the firing and the recovery condition (hysteresis) a firing
// alert stays firing and a pending one drops, so borderline data that crosses the threshold
// back and forth fires at most once. Without enough data a firing alert holds (a channel that
// falls silent during an incident has not recovered) until DefaultNoDataTimeout.
//
// # Observed conditions
//
// Some alerts are not judged from the rollups but observed by the server itself: a paired screen
// gone silent (internal/screen, alertname ScreenOffline). Config.Sources names them and no rule
// may take those names; each evaluation brings their conditions in Input.Observed. A condition
// fires as soon as it is observed (its source waited its own delay), and resolves at the first
// evaluation that no longer observes it; a source missing from an evaluation (its read failed)
// keeps its alerts as they are. They are silenced, acknowledged, recorded and restored like the
// rules' alerts.
//
// # Identity
//
// Each alert has labels (alertname = the rule's name, metric, moment, channel, severity, and
// the rule's filters) and a fingerprint, the hash of its sorted labels as Alertmanager computes
// it, stable across evaluations and restarts: Engine.Restore takes the latest state of each
// alert from the history, so that after a restart a firing alert is still firing and is not
// announced again.
package alert
