package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Signature statuses of a job's candidate.
const (
	SigVerified   = "verified"    // signed by a key the trust policy accepts, checked at submit
	SigUnsigned   = "unsigned"    // no signature given (trust mode optional or off)
	SigNotChecked = "not-checked" // a signature was given but the trust mode is off
)

// Provenance is where a candidate came from: its signature and signer, and
// the summary of the SBOM submitted with it. It belongs to a submission (the
// same bytes may be submitted signed by different keys), so it is stored
// with the job.
type Provenance struct {
	SignatureStatus string       `json:"signature_status,omitempty"`
	Signer          *Signer      `json:"signer,omitempty"`
	SBOM            *SBOMSummary `json:"sbom,omitempty"`
	// Signature is the armored SSH signature as submitted, kept to verify
	// the stored bytes again before flashing.
	Signature []byte `json:"-"`
	// SBOMData is the SBOM document; set on insert, not loaded with the job
	// (see DB.SBOM).
	SBOMData []byte `json:"-"`
}

// Signer is the key that signed a candidate.
type Signer struct {
	KeyID     string `json:"key_id"`  // SHA256:… fingerprint (SSH) or minisign key id
	Comment   string `json:"comment"` // the trusted key's comment in farm.hcl
	KeyType   string `json:"key_type"`
	Namespace string `json:"namespace,omitempty"` // SSH signatures
	HashAlg   string `json:"hash_alg"`
	// SignedComment is minisign's trusted comment, covered by the signature.
	SignedComment string `json:"signed_comment,omitempty"`
}

// SBOMSummary describes a CycloneDX SBOM submitted with a candidate.
type SBOMSummary struct {
	Format      string `json:"format"`       // CycloneDX
	SpecVersion string `json:"spec_version"` // 1.4, 1.5, 1.6
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	Components  int    `json:"components"`
	Subject     string `json:"subject,omitempty"` // metadata.component name@version
}

func provenanceArgs(fw *Firmware) []any {
	p := &fw.Provenance
	signer, sbom := "", ""
	if p.Signer != nil {
		signer = mustJSON(p.Signer)
	}
	if p.SBOM != nil {
		sbom = mustJSON(p.SBOM)
	}
	sig := p.Signature
	if sig == nil {
		sig = []byte{}
	}
	return []any{sig, p.SignatureStatus, signer, sbom, fw.Size}
}

type provenanceCols struct {
	signature            []byte
	status, signer, sbom string
	size                 int64
}

func (c *provenanceCols) into(fw *Firmware) error {
	p := &fw.Provenance
	fw.Size = c.size
	p.SignatureStatus = c.status
	if len(c.signature) > 0 {
		p.Signature = c.signature
	}
	if c.signer != "" {
		p.Signer = new(Signer)
		if err := json.Unmarshal([]byte(c.signer), p.Signer); err != nil {
			return fmt.Errorf("signer: %w", err)
		}
	}
	if c.sbom != "" {
		p.SBOM = new(SBOMSummary)
		if err := json.Unmarshal([]byte(c.sbom), p.SBOM); err != nil {
			return fmt.Errorf("sbom: %w", err)
		}
	}
	return nil
}

func putSBOM(ctx context.Context, ex execer, j *Job) error {
	if len(j.Firmware.SBOMData) == 0 {
		return nil
	}
	if _, err := ex.ExecContext(ctx, `INSERT INTO job_sbom(job_id, data) VALUES (?, ?)`, j.ID, j.Firmware.SBOMData); err != nil {
		return fmt.Errorf("store: job %s: sbom: %w", j.ID, err)
	}
	return nil
}

// SBOM returns the SBOM document submitted with a job.
func (db *DB) SBOM(ctx context.Context, jobID string) ([]byte, error) {
	var data []byte
	err := db.r.QueryRowContext(ctx, `SELECT data FROM job_sbom WHERE job_id = ?`, jobID).Scan(&data)
	if err != nil {
		return nil, fmt.Errorf("job %s: sbom: %w", jobID, notFound(err))
	}
	return data, nil
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
