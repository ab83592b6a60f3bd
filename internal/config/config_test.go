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
