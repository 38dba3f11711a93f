// Package verdict makes and checks signed verdict statements: a JSON
// document saying that one exact firmware candidate got one outcome from one
// spec on one board type, signed with the farm's Ed25519 key so anyone with
// the farm's public key can check it later (an OTA promotion step, an
// auditor). The farm key lives in the data dir, readable by its owner only.
// Functions here are safe for concurrent use.
package verdict

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// PayloadType names the statement format inside an Envelope.
const PayloadType = "application/vnd.hilfarm.verdict.v1+json"

// signingPrefix is signed before the payload, so a verdict signature can
// never be mistaken for a signature over anything else.
const signingPrefix = "hilfarm verdict v1\n"

// MaxEnvelopeSize bounds an envelope verify-verdict reads.
const MaxEnvelopeSize = 1 << 20

// ErrInvalid: the envelope is malformed, signed by another key, or altered.
var ErrInvalid = errors.New("verdict signature invalid")

// Statement is what the farm vouches for.
type Statement struct {
	Type      string    `json:"type"` // PayloadType
	Farm      string    `json:"farm"`
	Job       string    `json:"job"`
	Firmware  Firmware  `json:"firmware"`
	Spec      Spec      `json:"spec"`
	BoardType string    `json:"board_type"`
	Board     string    `json:"board"`
	Outcome   string    `json:"outcome"` // passed, failed, error, cancelled
	Reason    string    `json:"reason,omitempty"`
	Attempts  int       `json:"attempts"`
	Submitted time.Time `json:"submitted"`
	Started   time.Time `json:"started,omitzero"`
	Ended     time.Time `json:"ended"`
	Candidate Candidate `json:"candidate"`
	SBOM      *SBOMRef  `json:"sbom,omitempty"`
	Labels    Labels    `json:"labels,omitempty"`
}

// Labels are the job's labels (commit, pipeline, ...).
type Labels map[string]string

// Firmware identifies the candidate by content.
type Firmware struct {
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Spec identifies the test spec by content.
type Spec struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"` // of the spec source as submitted
}

// Candidate says who signed the candidate, as checked at submit.
type Candidate struct {
	SignatureStatus string `json:"signature_status"` // verified, unsigned, not-checked
	SignerKeyID     string `json:"signer_key_id,omitempty"`
	SignerComment   string `json:"signer_comment,omitempty"`
}

// SBOMRef identifies the SBOM submitted with the candidate.
type SBOMRef struct {
	SHA256     string `json:"sha256"`
	Components int    `json:"components"`
}

// Envelope is the signed form, the document served and verified.
type Envelope struct {
	PayloadType string `json:"payload_type"`
	Payload     string `json:"payload"`   // base64 of the statement's JSON
	KeyID       string `json:"key_id"`    // SHA256 fingerprint of the farm key
	Signature   string `json:"signature"` // base64 Ed25519 signature of signingPrefix+payload bytes
}

// Sign signs st with key.
func Sign(key ed25519.PrivateKey, st *Statement) (*Envelope, error) {
	st.Type = PayloadType
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("verdict: %w", err)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(key, append([]byte(signingPrefix), payload...))
	return &Envelope{
		PayloadType: PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		KeyID:       ssh.FingerprintSHA256(pub),
		Signature:   base64.StdEncoding.EncodeToString(sig),
	}, nil
}

// Verify checks an envelope's JSON against the farm's public key and returns
// the statement it vouches for.
func Verify(envelope []byte, pub ed25519.PublicKey) (*Statement, error) {
	if len(envelope) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxEnvelopeSize)
	}
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(envelope))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: not a verdict envelope: %v", ErrInvalid, err)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: payload type %q, want %q", ErrInvalid, env.PayloadType, PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is not a base64 Ed25519 signature", ErrInvalid)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: farm key: %v", ErrInvalid, err)
	}
	if id := ssh.FingerprintSHA256(sp); env.KeyID != id {
		return nil, fmt.Errorf("%w: signed by key %s, not by %s", ErrInvalid, env.KeyID, id)
	}
	if !ed25519.Verify(pub, append([]byte(signingPrefix), payload...), sig) {
		return nil, fmt.Errorf("%w: not signed by this farm key, or altered after signing", ErrInvalid)
	}
	var st Statement
	sdec := json.NewDecoder(bytes.NewReader(payload))
	sdec.DisallowUnknownFields()
	if err := sdec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: statement: %v", ErrInvalid, err)
	}
	if st.Type != PayloadType {
		return nil, fmt.Errorf("%w: statement type %q", ErrInvalid, st.Type)
	}
	return &st, nil
}

// LoadOrCreateKey reads the farm's verdict key from path, creating it
// (mode 0600) when it does not exist. A key file others can read is refused.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, key, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		der, merr := x509.MarshalPKCS8PrivateKey(key)
		if merr != nil {
			return nil, merr
		}
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(cerr, os.ErrExist) { // made by another process meanwhile
			return LoadOrCreateKey(path)
		}
		if cerr != nil {
			return nil, fmt.Errorf("verdict key %s: %w", path, cerr)
		}
		werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, fmt.Errorf("verdict key %s: %w", path, werr)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verdict key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("verdict key %s: mode %v lets others read the farm's signing key; chmod 600 it", path, fi.Mode().Perm())
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("verdict key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("verdict key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("verdict key %s: not an Ed25519 key", path)
	}
	return ek, nil
}

// PublicKeyLine is the farm's public key in authorized_keys form, the form
// verify-verdict takes: "ssh-ed25519 AAAA… hilfarm-verdict@FARM".
func PublicKeyLine(key ed25519.PrivateKey, farm string) string {
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		panic(err) // an ed25519 public key always converts
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " hilfarm-verdict@" + farm
}

// ParsePublicKey reads a public key in the form PublicKeyLine writes.
func ParsePublicKey(line []byte) (ed25519.PublicKey, string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, "", fmt.Errorf("farm public key: %w", err)
	}
	cp, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return nil, "", errors.New("farm public key: not an Ed25519 key")
	}
	ek, ok := cp.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("farm public key: %s, want ssh-ed25519", pub.Type())
	}
	return ek, ssh.FingerprintSHA256(pub), nil
}
