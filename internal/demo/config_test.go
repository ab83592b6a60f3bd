package demo

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseIncident(t *testing.T) {
	tests := []struct {
		in   string
		want Incident
		err  string // a fragment of the error; "" for none
	}{
		{in: "voice:outage:+2m:10m", want: Incident{"voice", Outage, 2 * time.Minute, 10 * time.Minute}},
		{in: "chat:spike:30s:5m", want: Incident{"chat", Spike, 30 * time.Second, 5 * time.Minute}},
		{in: " web:outage:+0s:1h30m ", want: Incident{"web", Outage, 0, 90 * time.Minute}},
		{in: "field_service:outage:+1h:2h", want: Incident{"field_service", Outage, time.Hour, 2 * time.Hour}},
		{in: "", err: "want channel:kind:+start:duration"},
		{in: "voice:outage:+2m", err: "want channel:kind:+start:duration, e.g. voice:outage:+2m:10m"},
		{in: "voice:outage:+2m:10m:x", err: "want channel:kind:+start:duration"},
		{in: "fax:outage:+2m:10m", err: `unknown channel "fax": want one of web, app`},
		{in: "Voice:outage:+2m:10m", err: `unknown channel "Voice"`},
		{in: "voice:down:+2m:10m", err: `unknown kind "down": want outage or spike`},
		{in: "voice:outage:+2x:10m", err: `start "+2x" is not a duration`},
		{in: "voice:outage:+2m:ten", err: `duration "ten" is not a duration`},
		{in: "voice:outage:-1m:10m", err: "start -1m0s is negative"},
		{in: "voice:outage:+2m:0s", err: "duration 0s: want a positive duration"},
		{in: "voice:outage:+2m:-5m", err: "want a positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseIncident(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseIncident(%q) error = %v, want one containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIncident(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseIncident(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			again, err := ParseIncident(got.String())
			if err != nil || again != got {
				t.Fatalf("ParseIncident(%q) = %+v, %v: String does not round-trip", got.String(), again, err)
			}
		})
	}
}

func TestAddFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	err := fs.Parse([]string{"--key", "k", "--rate", "20", "--diurnal=false", "--gzip",
		"--incident", "voice:outage:+2m:10m", "--incident", "chat:spike:+1m:1m",
		"--duplicates", "0.02", "--late", "0", "--seed", "7", "--batch-interval", "1s",
		"--batch-size", "10", "--duration", "1h"})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{URL: DefaultConfig().URL, Key: "k", Rate: 20, Gzip: true, DuplicateShare: 0.02,
		Seed: 7, BatchInterval: time.Second, BatchSize: 10, Duration: time.Hour}
	if got := cfg; got.URL != want.URL || got.Key != want.Key || got.Rate != want.Rate || got.Diurnal ||
		!got.Gzip || got.DuplicateShare != want.DuplicateShare || got.LateShare != 0 || got.Seed != 7 ||
		got.BatchInterval != want.BatchInterval || got.BatchSize != 10 || got.Duration != time.Hour {
		t.Errorf("flags gave %+v", got)
	}
	if got := cfg.Incidents.String(); got != "voice:outage:+2m0s:10m0s,chat:spike:+1m0s:1m0s" {
		t.Errorf("incidents = %s", got)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := fs.Parse([]string{"--incident", "voice:outage"}); err == nil || !strings.Contains(err.Error(), "want channel:kind") {
		t.Errorf("bad --incident: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		err    string // a fragment of the error; "" for none
	}{
		{"defaults with a key", func(*Config) {}, ""},
		{"no key", func(c *Config) { c.Key = "" }, "--key is empty"},
		{"no url", func(c *Config) { c.URL = "" }, "--url is empty"},
		{"relative url", func(c *Config) { c.URL = "localhost:8080" }, `--url "localhost:8080": want an absolute http or https URL`},
		{"ftp url", func(c *Config) { c.URL = "ftp://127.0.0.1" }, "want an absolute http or https URL"},
		{"zero rate", func(c *Config) { c.Rate = 0 }, "--rate 0: want events per second above 0"},
		{"huge rate", func(c *Config) { c.Rate = 1e6 }, "at most 10000"},
		{"negative duplicates", func(c *Config) { c.DuplicateShare = -0.1 }, "--duplicates -0.1: want a share from 0 to 0.5"},
		{"late above max", func(c *Config) { c.LateShare = 0.9 }, "--late 0.9"},
		{"tiny batch interval", func(c *Config) { c.BatchInterval = time.Millisecond }, "--batch-interval 1ms: want 10ms to 1m"},
		{"zero batch size", func(c *Config) { c.BatchSize = 0 }, "--batch-size 0"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "--duration -1s"},
		{"bad incident literal", func(c *Config) { c.Incidents = Incidents{{Channel: "fax", Kind: Outage, Duration: time.Minute}} }, `--incident: unknown channel "fax"`},
		{"incident after the end", func(c *Config) {
			c.Duration = time.Minute
			c.Incidents = Incidents{{Channel: "voice", Kind: Outage, Start: 2 * time.Minute, Duration: time.Minute}}
		}, "--incident voice:outage:+2m0s:1m0s starts after --duration 1m0s ends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Key = "secret"
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Validate error = %v, want one containing %q", err, tt.err)
			}
		})
	}

	t.Run("reports every problem", func(t *testing.T) {
		cfg := Config{}
		err := cfg.Validate()
		for _, flag := range []string{"--url", "--key", "--rate", "--batch-interval", "--batch-size"} {
			if err == nil || !strings.Contains(err.Error(), flag) {
				t.Errorf("Validate of the zero Config = %v, want it to name %s", err, flag)
			}
		}
	})
}
