package farm

import (
	"bytes"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/ssh"

	"github.com/hilfarm/hilfarm/internal/minisig"
	"github.com/hilfarm/hilfarm/internal/sshsig"
	"github.com/hilfarm/hilfarm/specs"
)

// candidateSig is a parsed candidate signature: an SSH signature
// (ssh-keygen -Y sign) or a minisign signature.
type candidateSig interface {
	keyID() string                  // matches specs.TrustedKey.KeyID
	hashAlg() string                // sha256, sha512 or blake2b-512
	newHash() hash.Hash             // nil: the SHA-256 the store computes anyway
	checkNamespace(ns string) error // the SSH namespace; minisign has none
	verify(k specs.TrustedKey, namespace string, digest []byte) error
	signedComment() string // minisign's trusted comment (signed too)
}

var errUnknownSignature = errors.New("not a signature: want an SSH signature (-----BEGIN SSH SIGNATURE-----, from ssh-keygen -Y sign) or a minisign signature (.minisig, from minisign -S)")

func parseCandidateSig(raw []byte) (candidateSig, error) {
	t := bytes.TrimSpace(raw)
	switch {
	case bytes.HasPrefix(t, []byte("-----BEGIN SSH SIGNATURE-----")):
		s, err := sshsig.Parse(raw)
		if err != nil {
			return nil, err
		}
		return sshCandidate{s}, nil
	case bytes.HasPrefix(t, []byte("untrusted comment:")):
		s, err := minisig.Parse(raw)
		if err != nil {
			return nil, err
		}
		return minisignCandidate{s}, nil
	}
	return nil, errUnknownSignature
}

type sshCandidate struct{ s *sshsig.Signature }

func (c sshCandidate) keyID() string         { return c.s.KeyID() }
func (c sshCandidate) hashAlg() string       { return c.s.HashAlg }
func (c sshCandidate) signedComment() string { return "" }
func (c sshCandidate) newHash() hash.Hash {
	if c.s.HashAlg == "sha256" {
		return nil
	}
	return c.s.NewHash()
}
func (c sshCandidate) checkNamespace(ns string) error {
	if c.s.Namespace != ns {
		return fmt.Errorf("signature made in namespace %q; this farm wants %q (ssh-keygen -Y sign -n %s)", c.s.Namespace, ns, ns)
	}
	return nil
}
func (c sshCandidate) verify(k specs.TrustedKey, ns string, digest []byte) error {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Line))
	if err != nil {
		return fmt.Errorf("trusted key %s: %w", k.KeyID, err)
	}
	return c.s.Verify(pub, ns, digest)
}

type minisignCandidate struct{ s *minisig.Signature }

func (c minisignCandidate) keyID() string               { return c.s.KeyID() }
func (c minisignCandidate) hashAlg() string             { return "blake2b-512" }
func (c minisignCandidate) newHash() hash.Hash          { return c.s.NewHash() }
func (c minisignCandidate) checkNamespace(string) error { return nil }
func (c minisignCandidate) signedComment() string       { return c.s.TrustedComment }
func (c minisignCandidate) verify(k specs.TrustedKey, _ string, digest []byte) error {
	if k.Type != specs.TrustKeyMinisign {
		return fmt.Errorf("trusted key %s is not a minisign key", k.KeyID)
	}
	pk, err := minisig.ParsePublicKey(k.Line)
	if err != nil {
		return fmt.Errorf("trusted key %s: %w", k.KeyID, err)
	}
	return c.s.Verify(pk, digest)
}
