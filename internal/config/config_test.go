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
		{"unknown protocol", nil, map[string]string{"TRUTHBOARD_CLICKHOUSE_PROTOCOL": "tcp"}, `TRUTHBOARD_CLICKHOUSE_PROTOCOL="tcp": want native or http`},
		{"bad flag number", []string{"-max-events", "-3"}, nil, "max-events"},
		{"spool below two requests", []string{"-spool-max-bytes", "1000", "-max-body-bytes", "1000"}, nil, "-spool-max-bytes"},
		{"tiny dead-letter", nil, map[string]string{"TRUTHBOARD_DEAD_LETTER_MAX_BYTES": "100"}, "TRUTHBOARD_DEAD_LETTER_MAX_BYTES"},
		{"tiny retention", []string{"-retention", "10m"}, nil, "-retention"},
		{"tick too fast", []string{"-live-tick", "1ms"}, nil, "-live-tick"},
		{"early ticks too fast", []string{"-live-min-tick", "10ms"}, nil, "-live-min-tick (TRUTHBOARD_LIVE_MIN_TICK) is 10ms: use at least 50ms"},
		{"stray argument", []string{"now"}, nil, "unexpected argument"},
		{"guessable admin token", nil, map[string]string{"TRUTHBOARD_ADMIN_TOKEN": "a"}, "TRUTHBOARD_ADMIN_TOKEN) has 1 characters: use at least 16 random ones, e.g. the output of `openssl rand -base64 24`"},
		{"trusted proxy not an address", nil, map[string]string{"TRUTHBOARD_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"}, `TRUTHBOARD_TRUSTED_PROXIES): "proxy.internal" is not an IP address`},
		{"trusted proxy range out of bounds", nil, map[string]string{"TRUTHBOARD_TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUTHBOARD_TRUSTED_PROXIES"},
		{"live and read queries take every connection", []string{"-clickhouse-max-conns", "6"}, nil, "TRUTHBOARD_CLICKHOUSE_MAX_CONNS"},
		{"a key's share below one request", []string{"-max-inflight-bytes-per-key", "1000"}, nil, "TRUTHBOARD_MAX_INFLIGHT_BYTES_PER_KEY"},
		{"memory limit below the bodies in flight", []string{"-memory-limit", "268435456"}, nil, "-memory-limit (TRUTHBOARD_MEMORY_LIMIT) is 256 MiB, below the 320 MiB"},
		{"a key's share above the budget", []string{"-max-inflight-bytes-per-key", "100000000"}, nil, "TRUTHBOARD_MAX_INFLIGHT_BYTES_PER_KEY"},
		{"pacing below two batches", []string{"-pace-backlog", "30000"}, nil, "-pace-backlog (TRUTHBOARD_PACE_BACKLOG) is 30000, below twice -flush-rows (20000)"},
		{"pacing wait of none", []string{"-pace-wait", "0s"}, nil, "-pace-wait (TRUTHBOARD_PACE_WAIT) is 0s: set it between 1ms and 10s"},
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

func TestTrustedProxies(t *testing.T) {
	c, err := Load(nil, env(map[string]string{
		"TRUTHBOARD_TRUSTED_PROXIES": "10.0.0.5, 192.168.7.9/16,::1",
		"TRUTHBOARD_ADMIN_TOKEN":     "tba_sixteen_chars",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		prefix, err := ParseProxy(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, prefix.String())
	}
	if want := "10.0.0.5/32 192.168.0.0/16 ::1/128"; strings.Join(got, " ") != want {
		t.Errorf("trusted proxies %q, want %q", got, want)
	}
	if len(Default().TrustedProxies) != 0 {
		t.Error("a proxy is trusted by default")
	}
}
