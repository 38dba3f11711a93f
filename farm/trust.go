package farm

// Signed candidates (issue 17): the farm's trust policy is applied at
// submit, while the firmware streams into the store, and again to the
// stored bytes right before a board runs them.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/internal/sshsig"
	"github.com/hilfarm/hilfarm/runner"
	"github.com/hilfarm/hilfarm/specs"
)

// Bounds on the provenance parts of a submission.
const (
	MaxSignatureBytes = sshsig.MaxArmoredSize // the signature part
	MaxSBOMBytes      = 4 << 20               // the sbom part
)

// candidateCheck is what the trust policy asks of one submission. It is
// made before the firmware is read; the firmware's bytes go through
// hashWriter while they are stored, and verify decides before the stored
// file is renamed into place, so a rejected candidate leaves nothing.
type candidateCheck struct {
	policies map[string]specs.TrustPolicy // by board type the job may run on
	sig      candidateSig
	rawSig   []byte
	hasher   *asyncHash // nil when the signature uses sha256 (the store's own hash)
	prov     store.Provenance
}

// checkCandidate applies the trust policy of every board type sel can run
// on to the signature (nil: none given) and validates the SBOM (nil: none).
// Errors are *RejectedError.
func (c *Controller) checkCandidate(sel specs.Selector, signature, sbom []byte) (*candidateCheck, error) {
	chk := &candidateCheck{policies: map[string]specs.TrustPolicy{}}
	for _, name := range c.matching(sel, false) {
		t := c.boardType(name)
		chk.policies[t] = c.cfg.Farm.Trust.For(t)
	}
	if len(chk.policies) == 0 && c.isRackType(sel.Type) { // a job for racks (hubjobs.go): this farm's policy for the type
		chk.policies[sel.Type] = c.cfg.Farm.Trust.For(sel.Type)
	}
	if sbom != nil {
		sum, err := parseSBOM(sbom)
		if err != nil {
			return nil, &RejectedError{Status: 422, Message: "sbom: " + err.Error()}
		}
		chk.prov.SBOM, chk.prov.SBOMData = sum, sbom
	}
	required, checked := chk.modes()
	switch {
	case signature == nil && required:
		return nil, &RejectedError{Status: 422, Message: "the trust policy requires a signed candidate (hilfarm submit --signature FILE, made with ssh-keygen -Y sign -n " + chk.namespace() + "); " + chk.accepted()}
	case signature == nil:
		chk.prov.SignatureStatus = store.SigUnsigned
		return chk, nil
	case len(signature) > MaxSignatureBytes:
		return nil, &RejectedError{Status: 413, Message: fmt.Sprintf("signature larger than %d bytes", MaxSignatureBytes)}
	case !checked:
		chk.prov.SignatureStatus = store.SigNotChecked
		return chk, nil
	}
	sig, err := parseCandidateSig(signature)
	if err != nil {
		return nil, &RejectedError{Status: 422, Message: "signature: " + err.Error() + "; " + chk.accepted()}
	}
	// Refuse a signer no policy accepts before reading the firmware.
	for t, p := range chk.policies {
		if p.Mode == specs.TrustOff {
			continue
		}
		if findKey(p, sig.keyID()) == nil {
			return nil, &RejectedError{Status: 422, Message: fmt.Sprintf("signature by %s, a key the trust policy for board type %s does not accept; %s", sig.keyID(), t, chk.accepted())}
		}
		if err := sig.checkNamespace(p.Namespace); err != nil {
			return nil, &RejectedError{Status: 422, Message: err.Error()}
		}
	}
	chk.sig, chk.rawSig = sig, signature
	if h := sig.newHash(); h != nil {
		chk.hasher = newAsyncHash(h)
	}
	return chk, nil
}

// hashWriter is where the firmware's bytes go besides the store (nil: nowhere).
func (chk *candidateCheck) hashWriter() io.Writer {
	if chk == nil || chk.hasher == nil {
		return nil
	}
	return chk.hasher
}

// close stops the hashing goroutine; safe to call more than once.
func (chk *candidateCheck) close() {
	if chk != nil && chk.hasher != nil {
		chk.hasher.Sum()
	}
}

// verify checks the signature against the firmware whose SHA-256 is sum256,
// once all of it went through hashWriter.
func (chk *candidateCheck) verify(sum256 []byte) error {
	if chk == nil || chk.sig == nil {
		return nil
	}
	digest := sum256
	if chk.hasher != nil {
		digest = chk.hasher.Sum()
	}
	signer, err := verifyAgainst(chk.sig, chk.policies, digest)
	if err != nil {
		return &RejectedError{Status: 422, Message: "signature: " + err.Error() + "; " + chk.accepted()}
	}
	chk.prov.Signer = signer
	chk.prov.SignatureStatus = store.SigVerified
	chk.prov.Signature = chk.rawSig
	return nil
}

// verifyAgainst verifies sig over digest for every policy that checks
// signatures, and returns the signer as the first such policy names it.
func verifyAgainst(sig candidateSig, policies map[string]specs.TrustPolicy, digest []byte) (*store.Signer, error) {
	types := make([]string, 0, len(policies))
	for t := range policies {
		types = append(types, t)
	}
	sort.Strings(types)
	var signer *store.Signer
	for _, t := range types {
		p := policies[t]
		if p.Mode == specs.TrustOff {
			continue
		}
		k := findKey(p, sig.keyID())
		if k == nil {
			return nil, fmt.Errorf("signed by %s, a key the trust policy for board type %s does not accept", sig.keyID(), t)
		}
		if err := sig.verify(*k, p.Namespace, digest); err != nil {
			return nil, err
		}
		if signer == nil {
			signer = &store.Signer{KeyID: k.KeyID, Comment: k.Comment, KeyType: k.Type, HashAlg: sig.hashAlg(), SignedComment: sig.signedComment()}
			if k.Type != specs.TrustKeyMinisign {
				signer.Namespace = p.Namespace
			}
		}
	}
	return signer, nil
}

func findKey(p specs.TrustPolicy, id string) *specs.TrustedKey {
	for i := range p.Keys {
		if p.Keys[i].KeyID == id {
			return &p.Keys[i]
		}
	}
	return nil
}

// modes says whether some board type requires a signature and whether any
// checks one.
func (chk *candidateCheck) modes() (required, checked bool) {
	for _, p := range chk.policies {
		required = required || p.Mode == specs.TrustRequired
		checked = checked || p.Mode != specs.TrustOff
	}
	return required, checked
}

func (chk *candidateCheck) namespace() string {
	for _, p := range chk.policies {
		if p.Mode != specs.TrustOff {
			return p.Namespace
		}
	}
	return specs.DefaultTrustNamespace
}

// accepted names the keys that would be accepted, per board type.
func (chk *candidateCheck) accepted() string {
	var parts []string
	for t, p := range chk.policies {
		if p.Mode == specs.TrustOff {
			continue
		}
		var keys []string
		for _, k := range p.Keys {
			keys = append(keys, strings.TrimSpace(k.KeyID+" "+k.Comment))
		}
		if len(keys) == 0 {
			keys = []string{"no key"}
		}
		parts = append(parts, fmt.Sprintf("board type %s accepts %s", t, strings.Join(keys, ", ")))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "the trust policy is off"
	}
	return strings.Join(parts, "; ")
}

// boardType is the type of the named board.
func (c *Controller) boardType(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.slots[name]; s != nil {
		return s.cfg.Type
	}
	return ""
}

// StoreTamperedError says the firmware store no longer holds what was
// submitted. It is the farm's fault: neither the candidate nor the board is
// blamed, and the job is not retried on another board.
type StoreTamperedError struct {
	SHA256 string
	Detail string
}

func (e *StoreTamperedError) Error() string {
	return fmt.Sprintf("farm fault: firmware store: candidate sha256:%.12s %s; not flashed (neither the candidate nor the board is at fault)", e.SHA256, e.Detail)
}

func isFarmFault(err error) bool {
	var st *StoreTamperedError
	return errors.As(err, &st)
}

// verifyStored checks the stored bytes of j's firmware right before they go
// to a board of type boardType: their SHA-256 must still be the submitted
// one and, when the candidate was signed, the signature must still hold
// under the board type's policy.
func (c *Controller) verifyStored(ctx context.Context, j *store.Job, boardType string) error {
	f, err := os.Open(c.firmwarePath(j.Firmware.SHA256))
	if err != nil {
		return &StoreTamperedError{SHA256: j.Firmware.SHA256, Detail: "cannot be read: " + err.Error()}
	}
	defer f.Close()
	h := sha256.New()
	var sig candidateSig
	var sh hash.Hash
	w := io.Writer(h)
	if len(j.Firmware.Signature) > 0 && j.Firmware.SignatureStatus == store.SigVerified {
		if sig, err = parseCandidateSig(j.Firmware.Signature); err != nil {
			return &StoreTamperedError{SHA256: j.Firmware.SHA256, Detail: "stored signature: " + err.Error()}
		}
		if sh = sig.newHash(); sh != nil {
			w = io.MultiWriter(h, sh)
		}
	}
	n, err := io.Copy(w, ctxReader{ctx, f})
	if err != nil {
		return fmt.Errorf("reading stored firmware %s: %w", j.Firmware.SHA256, err)
	}
	sum := h.Sum(nil)
	if got := hex.EncodeToString(sum); got != j.Firmware.SHA256 || (j.Firmware.Size > 0 && n != j.Firmware.Size) {
		return &StoreTamperedError{SHA256: j.Firmware.SHA256, Detail: fmt.Sprintf("was changed after submit: the stored %d bytes hash to sha256:%.12s", n, got)}
	}
	if sig == nil {
		return nil
	}
	digest := sum
	if sh != nil {
		digest = sh.Sum(nil)
	}
	pol := map[string]specs.TrustPolicy{boardType: c.cfg.Farm.Trust.For(boardType)}
	if _, err := verifyAgainst(sig, pol, digest); err != nil {
		return &StoreTamperedError{SHA256: j.Firmware.SHA256, Detail: "signature no longer verifies: " + err.Error()}
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// asyncHash hashes what is written to it on a goroutine of its own, so a
// second hash of an upload runs beside the store's SHA-256 (on another core)
// instead of after it. Writes copy into a bounded set of buffers.
type asyncHash struct {
	h    hash.Hash
	ch   chan []byte
	free chan []byte
	done chan []byte
	sum  []byte
}

const asyncHashBufs, asyncHashBufSize = 8, 64 << 10

func newAsyncHash(h hash.Hash) *asyncHash {
	a := &asyncHash{h: h, ch: make(chan []byte, asyncHashBufs), free: make(chan []byte, asyncHashBufs), done: make(chan []byte, 1)}
	for range asyncHashBufs {
		a.free <- make([]byte, 0, asyncHashBufSize)
	}
	go func() {
		for b := range a.ch {
			a.h.Write(b)
			a.free <- b[:0]
		}
		a.done <- a.h.Sum(nil)
	}()
	return a
}

func (a *asyncHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := <-a.free
		k := min(len(p), cap(b))
		b = append(b, p[:k]...)
		p = p[k:]
		a.ch <- b
	}
	return n, nil
}

// Sum ends the hashing and returns the digest; later calls return it again.
func (a *asyncHash) Sum() []byte {
	if a.sum == nil {
		close(a.ch)
		a.sum = <-a.done
	}
	return a.sum
}

// provenanceProperties are the JUnit properties that say where a job's
// candidate came from.
func provenanceProperties(j *store.Job) []runner.Property {
	fw := j.Firmware
	ps := []runner.Property{
		{Name: "firmware.size", Value: strconv.FormatInt(fw.Size, 10)},
		{Name: "firmware.signature", Value: fw.SignatureStatus},
	}
	if s := fw.Signer; s != nil {
		ps = append(ps, runner.Property{Name: "firmware.signer.key_id", Value: s.KeyID}, runner.Property{Name: "firmware.signer.comment", Value: s.Comment})
	}
	if s := fw.SBOM; s != nil {
		ps = append(ps,
			runner.Property{Name: "sbom.format", Value: s.Format + " " + s.SpecVersion},
			runner.Property{Name: "sbom.sha256", Value: s.SHA256},
			runner.Property{Name: "sbom.components", Value: strconv.Itoa(s.Components)})
	}
	return ps
}
