package notify

import (
	"fmt"
	"net/url"
	"strings"
)

// The environment variables that name the destinations; the errors of ParseWebhookURLs and
// ParseAlertmanagerURLs name them.
const (
	WebhookURLEnv      = "TRUTHBOARD_ALERT_WEBHOOK_URL"
	AlertmanagerURLEnv = "TRUTHBOARD_ALERTMANAGER_URL"
)

// ParseWebhookURLs reads TRUTHBOARD_ALERT_WEBHOOK_URL: comma-separated http(s) URLs that
// receive the webhook payload, each exactly as it is to be posted to (path and query kept; a
// user:password@ in it is sent as basic authentication). Empty: no webhook (nil, nil).
func ParseWebhookURLs(s string) ([]string, error) {
	return parseURLs(WebhookURLEnv, s, "https://hooks.example.com/truthboard", false)
}

// ParseAlertmanagerURLs reads TRUTHBOARD_ALERTMANAGER_URL: comma-separated base URLs of
// Alertmanager instances, such as http://alertmanager:9093 (with a path prefix when
// Alertmanager runs with --web.route-prefix). Alerts go to <base>/api/v2/alerts of each: list
// every instance of an Alertmanager cluster, as Prometheus does. Empty: none (nil, nil).
func ParseAlertmanagerURLs(s string) ([]string, error) {
	return parseURLs(AlertmanagerURLEnv, s, "http://alertmanager:9093", true)
}

// parseURLs splits s at commas and checks each URL, with errors that name env and show a
// working example.
func parseURLs(env, s, example string, base bool) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for i, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s: URL %d %q: %s", env, i+1, redactRaw(raw), fmt.Sprintf(format, args...))
		}
		if raw == "" {
			return nil, fmt.Errorf("%s: URL %d is empty: separate URLs with single commas and leave no comma at the end", env, i+1)
		}
		if !strings.Contains(raw, "://") {
			return nil, bad("no scheme: write it with http:// or https://, e.g. %s", example)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, bad("not a URL (%v): write it like %s", unwrapURLError(err), example)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, bad("scheme %q: only http:// and https:// are supported, e.g. %s", u.Scheme, example)
		}
		if u.Hostname() == "" {
			return nil, bad("no host: write it like %s", example)
		}
		if u.Fragment != "" {
			return nil, bad("a #fragment is never sent to a server: remove it")
		}
		if base {
			if strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api/v2/alerts") {
				return nil, bad("give Alertmanager's base URL without /api/v2/alerts, e.g. %s", example)
			}
			if u.RawQuery != "" {
				return nil, bad("a base URL takes no ?query: remove it, e.g. %s", example)
			}
			u.Path = strings.TrimRight(u.Path, "/")
			u.RawPath = ""
		}
		norm := u.String()
		if seen[norm] {
			return nil, bad("listed twice: every alert would be delivered twice; remove one")
		}
		seen[norm] = true
		out = append(out, norm)
	}
	return out, nil
}

// unwrapURLError drops url.Error's repetition of the whole URL, which may hold a password.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// redact hides the secrets a URL may hold, a password and query values (?token=…), for error
// messages, logs and stats. A secret in the path shows.
func redact(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// redactRaw is redact for a URL that may not even parse.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return redact(u)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
		}
	}
	return raw
}
