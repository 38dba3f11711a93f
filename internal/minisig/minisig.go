// Package minisig reads and checks minisign signatures (Ed25519 over the
// BLAKE2b-512 hash of the file, as minisign 0.10+ writes by default), with
// public keys in minisign's format. It only verifies. The caller hashes the
// message (NewHash), so a file can be hashed while it streams elsewhere.
// Legacy signatures over the whole message (minisign -l) are refused: they
// would need the whole file in memory. Safe for concurrent use.
package minisig

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// MaxSize bounds a signature file (two comment lines and two base64 lines).
const MaxSize = 16 << 10

// Errors callers tell apart.
var (
	ErrMalformed    = errors.New("not a minisign signature")
	ErrBadSignature = errors.New("signature does not match the firmware")
)

// PublicKey is a minisign public key.
type PublicKey struct {
	ID      [8]byte
	Key     ed25519.PublicKey
	Comment string // the untrusted comment of the .pub file, if given
}

// KeyID is the key id as minisign prints it (upper-case hex, no leading zeros).
func (k PublicKey) KeyID() string { return keyID(k.ID) }

func keyID(id [8]byte) string { return fmt.Sprintf("%X", binary.LittleEndian.Uint64(id[:])) }

// ParsePublicKey reads a public key: the base64 line ("RW…"), or the whole
// .pub file with its "untrusted comment:" line.
func ParsePublicKey(text string) (PublicKey, error) {
	var k PublicKey
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > 2 {
		return k, errors.New("a minisign public key is at most two lines")
	}
	if len(lines) == 2 {
		c, ok := strings.CutPrefix(strings.TrimSpace(lines[0]), "untrusted comment:")
		if !ok {
			return k, errors.New(`the first of two lines must be "untrusted comment: …"`)
		}
		k.Comment = strings.TrimSpace(c)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[len(lines)-1]))
	if err != nil || len(raw) != 2+8+32 || string(raw[:2]) != "Ed" {
		return k, errors.New("not a minisign public key (want the base64 line RW… from minisign -G)")
	}
	copy(k.ID[:], raw[2:10])
	k.Key = ed25519.PublicKey(bytes.Clone(raw[10:]))
	return k, nil
}

// Signature is a parsed minisign signature file.
type Signature struct {
	ID             [8]byte
	sig            []byte
	TrustedComment string
	global         []byte
}

// KeyID is the id of the key that made the signature.
func (s *Signature) KeyID() string { return keyID(s.ID) }

// NewHash returns the hash the signature covers (BLAKE2b-512).
func (s *Signature) NewHash() hash.Hash {
	h, _ := blake2b.New512(nil)
	return h
}

// Parse reads a minisign signature file (.minisig).
func Parse(b []byte) (*Signature, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "untrusted comment:") || !strings.HasPrefix(lines[2], "trusted comment: ") {
		return nil, fmt.Errorf("%w: want the four lines minisign -S writes", ErrMalformed)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[1]))
	if err != nil || len(raw) != 2+8+64 {
		return nil, fmt.Errorf("%w: bad signature line", ErrMalformed)
	}
	switch string(raw[:2]) {
	case "ED":
	case "Ed":
		return nil, fmt.Errorf("%w: a legacy signature (minisign -l) over the whole file; sign without -l", ErrMalformed)
	default:
		return nil, fmt.Errorf("%w: unknown algorithm %q", ErrMalformed, raw[:2])
	}
	global, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[3]))
	if err != nil || len(global) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: bad global signature line", ErrMalformed)
	}
	s := &Signature{sig: raw[10:], TrustedComment: strings.TrimSuffix(strings.TrimPrefix(lines[2], "trusted comment: "), "\r"), global: global}
	copy(s.ID[:], raw[2:10])
	return s, nil
}

// Verify checks the signature over a message whose BLAKE2b-512 is digest,
// and the trusted comment, under key k.
func (s *Signature) Verify(k PublicKey, digest []byte) error {
	if s.ID != k.ID {
		return fmt.Errorf("%w: signed by key %s", ErrBadSignature, s.KeyID())
	}
	if !ed25519.Verify(k.Key, digest, s.sig) {
		return ErrBadSignature
	}
	if !ed25519.Verify(k.Key, append(bytes.Clone(s.sig), s.TrustedComment...), s.global) {
		return fmt.Errorf("%w: the trusted comment was altered", ErrBadSignature)
	}
	return nil
}
