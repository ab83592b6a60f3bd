package store

import (
	"context"
	"time"

	"github.com/truthboard/truthboard/internal/auth"
)

// CreateIngestKey records a new stored ingest key (its secret's hash, never the key).
func (s *Store) CreateIngestKey(ctx context.Context, k auth.IngestKey) error {
	return s.createCredential(ctx, ingestKeysTable, k)
}

// RevokeIngestKey marks the key id revoked at at. found is false when no such key exists;
// revoking a revoked key again changes nothing.
func (s *Store) RevokeIngestKey(ctx context.Context, id string, at time.Time) (found bool, err error) {
	return s.revokeCredential(ctx, ingestKeysTable, id, at)
}

// IngestKeys lists every stored ingest key, revoked ones too, oldest first. Keys configured in
// TRUTHBOARD_INGEST_KEYS or secrets.json are not stored, so not listed.
func (s *Store) IngestKeys(ctx context.Context) ([]auth.IngestKey, error) {
	return s.credentials(ctx, ingestKeysTable, "")
}
