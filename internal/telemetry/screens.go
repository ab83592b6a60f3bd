package telemetry

import "github.com/prometheus/client_golang/prometheus"

// ScreenStats describe the screens (internal/screen).
type ScreenStats struct {
	// Waiting are the TVs showing a pairing code on this node; Connected the paired screens
	// connected to it.
	Waiting, Connected int
	// Online and Offline count every node's paired screens, as of the last sweep.
	Online, Offline int
	// Delivered counts the commands this node delivered; WentOffline the screens it saw go
	// silent.
	Delivered, WentOffline uint64
}

// WatchScreens exposes the screens' figures, read at each scrape. Call it once.
func (m *Metrics) WatchScreens(stats func() ScreenStats) {
	m.Registry.MustRegister(&screenCollector{stats: stats})
}

var (
	screensDesc = prometheus.NewDesc("truthboard_screens",
		"Paired screens by state (online, offline: silent for longer than -screen-offline-after), over every node.", []string{"state"}, nil)
	screensHere = prometheus.NewDesc("truthboard_screens_connected",
		"Paired screens connected to this node.", nil, nil)
	screensWaiting = prometheus.NewDesc("truthboard_screens_waiting_for_pairing",
		"TVs showing a pairing code on this node.", nil, nil)
	screenCommands = prometheus.NewDesc("truthboard_screen_commands_delivered_total",
		"Commands (reload, show, identify, rename, unpair) this node delivered to its screens.", nil, nil)
	screensOffline = prometheus.NewDesc("truthboard_screens_went_offline_total",
		"Screens this node saw go from online to offline: alert on its increase.", nil, nil)
)

type screenCollector struct{ stats func() ScreenStats }

func (c *screenCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{screensDesc, screensHere, screensWaiting, screenCommands, screensOffline} {
		ch <- d
	}
}

func (c *screenCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(screensDesc, prometheus.GaugeValue, float64(s.Online), "online")
	ch <- prometheus.MustNewConstMetric(screensDesc, prometheus.GaugeValue, float64(s.Offline), "offline")
	ch <- prometheus.MustNewConstMetric(screensHere, prometheus.GaugeValue, float64(s.Connected))
	ch <- prometheus.MustNewConstMetric(screensWaiting, prometheus.GaugeValue, float64(s.Waiting))
	ch <- prometheus.MustNewConstMetric(screenCommands, prometheus.CounterValue, float64(s.Delivered))
	ch <- prometheus.MustNewConstMetric(screensOffline, prometheus.CounterValue, float64(s.WentOffline))
}
