package auth

import (
	"context"
	"log/slog"
	"time"
)

// DisplayTokenPrefix starts every display token: "tbd_<id>_<secret>".
const DisplayTokenPrefix = "tbd_"

// DisplayTokenKind is the read-only token of an unattended screen (a TV wall).
var DisplayTokenKind = Kind{Prefix: DisplayTokenPrefix, Noun: "display token", NameHint: `name the screen, e.g. "Wall 3"`}

// DisplayToken is the stored record of a display token.
type DisplayToken = Credential

// DisplayCache holds the active display tokens (see Cache).
type DisplayCache = Cache

// NewDisplayCache makes the cache of display tokens filled by load every interval.
func NewDisplayCache(load func(context.Context) ([]DisplayToken, error), interval time.Duration, log *slog.Logger) *DisplayCache {
	return NewCache(DisplayTokenKind, load, interval, log)
}
