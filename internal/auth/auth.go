// Package auth holds Truthboard's credentials: the ingest API keys and the admin token, how
// they are generated and stored on first start, and how a presented token is checked (in
// constant time, so response timing reveals nothing about a key).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySet is an immutable set of secrets, and optionally a cache of stored credentials (the
// ingest keys an admin adds and revokes while the servers run). Check compares against every
// secret so the time taken does not depend on which one, if any, matched.
type KeySet struct {
	sums   [][sha256.Size]byte
	stored *Cache
}

// NewKeySet builds a set from secrets; empty strings are ignored.
func NewKeySet(keys ...string) *KeySet {
	k := &KeySet{}
	for _, s := range keys {
		if s != "" {
			k.sums = append(k.sums, sha256.Sum256([]byte(s)))
		}
	}
	return k
}

// WithStored returns the set with the active credentials of c added: Check accepts a secret of
// the set or a credential of c (nil: none). The set itself is not changed; a nil set is empty.
func (k *KeySet) WithStored(c *Cache) *KeySet {
	if k == nil {
		return &KeySet{stored: c}
	}
	return &KeySet{sums: k.sums, stored: c}
}

// Check reports whether token is one of the set's secrets or an active stored credential.
func (k *KeySet) Check(token string) bool {
	// Hashing first gives equal-length inputs to ConstantTimeCompare, which would otherwise
	// return early on a length mismatch.
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for i := range k.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], k.sums[i][:])
	}
	if k.stored != nil {
		// Checked whatever the configured secrets said, so timing does not tell which matched.
		if _, found := k.stored.Check(token); found {
			ok = 1
		}
	}
	return ok == 1 && token != ""
}

// Len is the number of configured secrets in the set (stored credentials not counted).
func (k *KeySet) Len() int { return len(k.sums) }

// BearerToken extracts the token of an "Authorization: Bearer <token>" header value.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// NewSecret returns a random secret with a readable prefix naming its use, e.g. "tbi_…".
func NewSecret(prefix string) string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no randomness: a bug of the machine
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Secrets are the credentials a server generated for itself because none were configured.
type Secrets struct {
	IngestKey  string `json:"ingest_key"`
	AdminToken string `json:"admin_token"`
}

// SecretsFile is where generated secrets are kept, inside the data directory.
const SecretsFile = "secrets.json"

// LoadOrCreateSecrets returns the secrets stored in dir, generating and storing (mode 0600)
// any that are missing. created tells whether anything new was generated.
func LoadOrCreateSecrets(dir string) (s Secrets, created bool, err error) {
	path := filepath.Join(dir, SecretsFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &s); err != nil {
			return s, false, fmt.Errorf("read %s: %w (delete it to generate new secrets)", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return s, false, fmt.Errorf("read %s: %w", path, err)
	}
	if s.IngestKey == "" {
		s.IngestKey, created = NewSecret("tbi_"), true
	}
	if s.AdminToken == "" {
		s.AdminToken, created = NewSecret("tba_"), true
	}
	if !created {
		return s, false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, false, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	data, _ = json.MarshalIndent(s, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return s, false, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return s, false, fmt.Errorf("write %s: %w", path, err)
	}
	return s, true, nil
}
