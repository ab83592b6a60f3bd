package store

// The SQL of the alert history, for the modern-ClickHouse check (alerts_test.go).
const (
	LatestAlertsSQL  = latestAlertsSQL
	AlertSilencesSQL = alertSilencesSQL
)

var (
	AlertHistorySQL        = alertHistorySQL
	AlertTransitionColumns = alertTransitionColumns
)
