package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters of new hashes: OWASP's second recommended set (19 MiB, 2 passes,
// one lane). A check reads the parameters from the stored hash, so they can change later
// without invalidating stored passwords. A hash takes about 19 MiB while it runs: callers
// bound how many run at once.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// HashMemoryBytes is the memory one hash or check takes while it runs.
const HashMemoryBytes = argonMemory * 1024

// HashPassword returns the argon2id hash of password in PHC form:
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>".
func HashPassword(password string) string {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// phc is a parsed argon2id hash.
type phc struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseHash reads a hash of HashPassword; it refuses parameters far beyond those it writes, so
// a tampered row cannot make a check take unbounded memory.
func parseHash(h string) (phc, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, fmt.Errorf("not an argon2id hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return phc{}, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	var p phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return phc{}, fmt.Errorf("malformed argon2 parameters %q", parts[3])
	}
	if p.memory == 0 || p.memory > 256*1024 || p.time == 0 || p.time > 10 || p.threads == 0 {
		return phc{}, fmt.Errorf("argon2 parameters out of range %q", parts[3])
	}
	var err error
	b64 := base64.RawStdEncoding
	if p.salt, err = b64.DecodeString(parts[4]); err != nil {
		return phc{}, fmt.Errorf("malformed salt")
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) == 0 || len(p.key) > 64 {
		return phc{}, fmt.Errorf("malformed key")
	}
	return p, nil
}

// dummyHash is checked when a username is unknown, so that the answer takes as long as for a
// known one and timing does not tell which usernames exist.
var dummyHash = HashPassword("no account has this password")

// CheckPassword reports whether password matches hash, comparing in constant time. An empty
// or malformed hash matches nothing but still costs one hash (see dummyHash).
func CheckPassword(hash, password string) bool {
	p, err := parseHash(hash)
	ok := err == nil
	if !ok {
		p, _ = parseHash(dummyHash)
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1 && ok
}
