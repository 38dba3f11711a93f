// Package sshsig reads and checks SSH signatures, the format ssh-keygen -Y
// sign writes (and git uses for signed commits), as described in OpenSSH's
// PROTOCOL.sshsig. It only verifies; it never signs. The hash of the signed
// message is computed by the caller, so a file can be hashed while it is
// streamed elsewhere. Everything here is safe for concurrent use.
package sshsig

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/ssh"
)

// MaxArmoredSize bounds an armored signature. A signature by an 8192-bit RSA
// key is about 2.5 KiB; anything much larger is not a signature.
const MaxArmoredSize = 16 << 10

const (
	magic      = "SSHSIG"
	armorBegin = "-----BEGIN SSH SIGNATURE-----"
	armorEnd   = "-----END SSH SIGNATURE-----"
)

// Errors callers tell apart.
var (
	// ErrMalformed: the input is not an SSH signature.
	ErrMalformed = errors.New("not an SSH signature")
	// ErrBadSignature: the signature does not match the message and key.
	ErrBadSignature = errors.New("signature does not match the firmware")
)

// Signature is a parsed SSH signature.
type Signature struct {
	PublicKey ssh.PublicKey
	Namespace string
	HashAlg   string // "sha256" or "sha512"
	sig       *ssh.Signature
}

// KeyID is the signer key's SHA256 fingerprint, as ssh-keygen -l prints it.
func (s *Signature) KeyID() string { return ssh.FingerprintSHA256(s.PublicKey) }

// NewHash returns a new hash of the kind the signature was made with.
func (s *Signature) NewHash() hash.Hash {
	if s.HashAlg == "sha256" {
		return sha256.New()
	}
	return sha512.New()
}

type blob struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  []byte
	HashAlg   string
	Signature []byte
}

// Parse reads an armored SSH signature (the .sig file ssh-keygen writes).
func Parse(armored []byte) (*Signature, error) {
	if len(armored) > MaxArmoredSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxArmoredSize)
	}
	s := bytes.TrimSpace(armored)
	if !bytes.HasPrefix(s, []byte(armorBegin)) || !bytes.HasSuffix(s, []byte(armorEnd)) {
		return nil, fmt.Errorf("%w: want the armored form from ssh-keygen -Y sign (-----BEGIN SSH SIGNATURE-----)", ErrMalformed)
	}
	body := s[len(armorBegin) : len(s)-len(armorEnd)]
	body = bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, body)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	n, err := base64.StdEncoding.Decode(raw, body)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64: %v", ErrMalformed, err)
	}
	raw = raw[:n]
	if !bytes.HasPrefix(raw, []byte(magic)) {
		return nil, fmt.Errorf("%w: no SSHSIG preamble", ErrMalformed)
	}
	var b blob
	if err := ssh.Unmarshal(raw[len(magic):], &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if b.Version != 1 {
		return nil, fmt.Errorf("%w: version %d (want 1)", ErrMalformed, b.Version)
	}
	if b.HashAlg != "sha256" && b.HashAlg != "sha512" {
		return nil, fmt.Errorf("%w: hash algorithm %q (want sha256 or sha512)", ErrMalformed, b.HashAlg)
	}
	pub, err := ssh.ParsePublicKey(b.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(b.Signature, sig); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	return &Signature{PublicKey: pub, Namespace: b.Namespace, HashAlg: b.HashAlg, sig: sig}, nil
}

// Verify checks the signature over a message whose hash (of kind HashAlg)
// is digest, made by the key pub in namespace.
func (s *Signature) Verify(pub ssh.PublicKey, namespace string, digest []byte) error {
	if !bytes.Equal(pub.Marshal(), s.PublicKey.Marshal()) {
		return fmt.Errorf("%w: signed by %s", ErrBadSignature, s.KeyID())
	}
	if s.Namespace != namespace {
		return fmt.Errorf("%w: signed in namespace %q, want %q (ssh-keygen -Y sign -n %s)", ErrBadSignature, s.Namespace, namespace, namespace)
	}
	if err := pub.Verify(signedData(namespace, s.HashAlg, digest), s.sig); err != nil {
		return ErrBadSignature
	}
	return nil
}

func signedData(namespace, hashAlg string, digest []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	for _, f := range [][]byte{[]byte(namespace), nil, []byte(hashAlg), digest} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		b.Write(n[:])
		b.Write(f)
	}
	return b.Bytes()
}
