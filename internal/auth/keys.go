package auth

import (
	"context"
	"log/slog"
	"time"
)

// IngestKeyPrefix starts every ingest key, configured or generated ("tbi_…") and stored
// ("tbi_<id>_<secret>"). A configured key may have any form; only stored ones are parsed.
const IngestKeyPrefix = "tbi_"

// IngestKeyKind is an ingest key kept in the database, which an admin adds and revokes while
// the servers run. Keys configured in TRUTHBOARD_INGEST_KEYS or generated in secrets.json are
// a KeySet instead, and work beside them.
var IngestKeyKind = Kind{Prefix: IngestKeyPrefix, Noun: "ingest key", NameHint: `name the sender, e.g. "web-checkout"`}

// IngestKey is the stored record of an ingest key.
type IngestKey = Credential

// IngestKeyCache holds the active stored ingest keys (see Cache).
type IngestKeyCache = Cache

// NewIngestKeyCache makes the cache of stored ingest keys filled by load every interval.
func NewIngestKeyCache(load func(context.Context) ([]IngestKey, error), interval time.Duration, log *slog.Logger) *IngestKeyCache {
	return NewCache(IngestKeyKind, load, interval, log)
}
