package notify

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseURLs(t *testing.T) {
	for _, tc := range []struct {
		alertmanager bool
		in           string
		want         []string
		errHas       []string // every one in the error; nil: no error
	}{
		{false, "", nil, nil},
		{false, "  ", nil, nil},
		{false, "https://hooks.example.com/truthboard?token=abc", []string{"https://hooks.example.com/truthboard?token=abc"}, nil},
		{false, " http://a:8080/x , https://user:pw@b/y ", []string{"http://a:8080/x", "https://user:pw@b/y"}, nil},
		{true, "http://am-0:9093, http://am-1:9093/", []string{"http://am-0:9093", "http://am-1:9093"}, nil},
		{true, "https://example.com/alertmanager/", []string{"https://example.com/alertmanager"}, nil},

		{false, "hooks.example.com/x", nil, []string{WebhookURLEnv, "URL 1", "no scheme", "https://hooks.example.com/truthboard"}},
		{true, "alertmanager:9093", nil, []string{AlertmanagerURLEnv, "no scheme", "http://alertmanager:9093"}},
		{false, "ftp://x/y", nil, []string{"scheme \"ftp\"", "http:// and https://"}},
		{false, "http:///path", nil, []string{"no host"}},
		{false, "http://a/x,", nil, []string{"URL 2 is empty", "no comma at the end"}},
		{false, "http://a/x,,http://b/", nil, []string{"URL 2 is empty"}},
		{false, "http://a/x#frag", nil, []string{"fragment", "remove it"}},
		{false, "http://a/x, http://a/x", nil, []string{"URL 2", "listed twice"}},
		{false, "http://a b/", nil, []string{"not a URL", "write it like"}},
		{true, "http://am:9093/api/v2/alerts", nil, []string{"without /api/v2/alerts"}},
		{true, "http://am:9093/?x=1", nil, []string{"no ?query"}},
		// A password never shows in an error.
		{false, "ftp://user:secret@x/", nil, []string{"user:xxxxx@x"}},
		{false, "http://user:secret@a b/", nil, []string{"user:xxxxx@"}},
		{false, "ftp://x/?token=secret", nil, []string{"token=xxxxx"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			parse := ParseWebhookURLs
			if tc.alertmanager {
				parse = ParseAlertmanagerURLs
			}
			got, err := parse(tc.in)
			if tc.errHas == nil {
				if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestStatsHidePasswords: the URL in the stats (and so in /metrics labels) has no password
// and no query value.
func TestStatsHidePasswords(t *testing.T) {
	w, err := NewWebhook(WebhookConfig{URLs: []string{"https://user:secret@hooks.example.com/x?token=secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Stats()[0].URL; got != "https://user:xxxxx@hooks.example.com/x?token=xxxxx" {
		t.Errorf("stats URL %q", got)
	}
	if _, err := NewWebhook(WebhookConfig{}); err == nil {
		t.Error("a webhook without URL was made")
	}
}
