package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadPrecedence(t *testing.T) {
	c, err := Load([]string{"-listen", "127.0.0.1:9999"}, env(map[string]string{
		"TRUTHBOARD_LISTEN":      "127.0.0.1:7777",
		"TRUTHBOARD_LIVE_TICK":   "500ms",
		"TRUTHBOARD_INGEST_KEYS": " a, b ,,",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" {
		t.Errorf("Listen = %s: the flag must win over the environment", c.Listen)
	}
	if c.LiveTick != 500*time.Millisecond || strings.Join(c.IngestKeys, "|") != "a|b" {
		t.Errorf("LiveTick %v, IngestKeys %q", c.LiveTick, c.IngestKeys)
	}
	if c.ClickHouseAddr != Default().ClickHouseAddr {
		t.Errorf("ClickHouseAddr = %s, want the default", c.ClickHouseAddr)
	}
}

func TestLoadErrorsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad env duration", nil, map[string]string{"TRUTHBOARD_RETENTION": "a month"}, "TRUTHBOARD_RETENTION"},
		{"bad env address", nil, map[string]string{"TRUTHBOARD_CLICKHOUSE_ADDR": "localhost"}, "TRUTHBOARD_CLICKHOUSE_ADDR"},
		{"bad flag number", []string{"-max-events", "-3"}, nil, "max-events"},
		{"spool below two requests", []string{"-spool-max-bytes", "1000", "-max-body-bytes", "1000"}, nil, "-spool-max-bytes"},
		{"tiny dead-letter", nil, map[string]string{"TRUTHBOARD_DEAD_LETTER_MAX_BYTES": "100"}, "TRUTHBOARD_DEAD_LETTER_MAX_BYTES"},
		{"tiny retention", []string{"-retention", "10m"}, nil, "-retention"},
		{"tick too fast", []string{"-live-tick", "1ms"}, nil, "-live-tick"},
		{"stray argument", []string{"now"}, nil, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var b strings.Builder
	PrintHelp(&b)
	c := Default()
	for _, s := range c.settings() {
		if !strings.Contains(b.String(), "-"+s.flag+", "+s.env) {
			t.Errorf("help does not document -%s / %s", s.flag, s.env)
		}
	}
}

func TestAlertURLs(t *testing.T) {
	for _, tc := range []struct {
		env, value, wantErr string
	}{
		{"TRUTHBOARD_ALERT_WEBHOOK_URL", "https://hooks.example.com/a?token=x, http://127.0.0.1:9000/b", ""},
		{"TRUTHBOARD_ALERT_WEBHOOK_URL", "hooks.example.com/a", `TRUTHBOARD_ALERT_WEBHOOK_URL="hooks.example.com/a": URL 1 of the list: want an absolute http:// or https:// URL`},
		{"TRUTHBOARD_ALERTMANAGER_URL", "http://127.0.0.1:9093,ftp://x", "URL 2 of the list"},
		{"TRUTHBOARD_PUBLIC_URL", "https://truthboard.example.com/", ""},
		{"TRUTHBOARD_PUBLIC_URL", "https://truthboard.example.com/?a=b", "TRUTHBOARD_PUBLIC_URL"},
		{"TRUTHBOARD_ALERT_INTERVAL", "10ms", "use at least 100ms"},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			c, err := Load(nil, func(k string) string {
				if k == tc.env {
					return tc.value
				}
				return ""
			}, io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.env == "TRUTHBOARD_ALERT_WEBHOOK_URL" && len(c.AlertWebhookURLs) != 2 {
					t.Errorf("webhook URLs %q, want 2", c.AlertWebhookURLs)
				}
				if tc.env == "TRUTHBOARD_PUBLIC_URL" && c.PublicURL != "https://truthboard.example.com" {
					t.Errorf("public URL %q, want it without the trailing slash", c.PublicURL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
