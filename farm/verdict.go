package farm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/hilfarm/hilfarm/internal/verdict"
)

// VerdictKeyFile is the farm's verdict signing key, in the data dir (0600).
const VerdictKeyFile = "verdict-key.pem"

func (c *Controller) loadVerdictKey() error {
	k, err := verdict.LoadOrCreateKey(filepath.Join(c.cfg.DataDir, VerdictKeyFile))
	if err != nil {
		return fmt.Errorf("farm: %w", err)
	}
	c.verdictKey = k
	return nil
}

// VerdictKey is the farm's public verdict key in authorized_keys form.
func (c *Controller) VerdictKey() string {
	return verdict.PublicKeyLine(c.verdictKey, c.cfg.Farm.Name)
}

// Verdict returns the signed verdict statement of a finished job. A job
// that has not finished has none (ErrNoResult).
func (c *Controller) Verdict(ctx context.Context, id string) (*verdict.Envelope, error) {
	j, err := c.db.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if !store.Final(j.State) {
		return nil, fmt.Errorf("job %s is %s: a verdict exists once it has finished: %w", id, j.State, ErrNoResult)
	}
	return verdict.Sign(c.verdictKey, verdictStatement(c.cfg.Farm.Name, j, c.boardType(j.Board)))
}

func verdictStatement(farmName string, j *store.Job, boardType string) *verdict.Statement {
	specSum := sha256.Sum256(j.SpecSrc)
	st := &verdict.Statement{
		Farm: farmName,
		Job:  j.ID,
		Firmware: verdict.Firmware{
			SHA256: j.Firmware.SHA256, Size: j.Firmware.Size, Name: j.Firmware.Name, Version: j.Firmware.Version,
		},
		Spec:      verdict.Spec{Name: j.SpecName, SHA256: hex.EncodeToString(specSum[:])},
		BoardType: boardType,
		Board:     j.Board,
		Outcome:   j.State,
		Reason:    j.Reason,
		Attempts:  j.Attempts,
		Submitted: j.Created.UTC(),
		Started:   j.Started.UTC(),
		Ended:     j.Ended.UTC(),
		Candidate: verdict.Candidate{SignatureStatus: j.Firmware.SignatureStatus},
		Labels:    j.Labels,
	}
	if s := j.Firmware.Signer; s != nil {
		st.Candidate.SignerKeyID, st.Candidate.SignerComment = s.KeyID, s.Comment
	}
	if s := j.Firmware.SBOM; s != nil {
		st.SBOM = &verdict.SBOMRef{SHA256: s.SHA256, Components: s.Components}
	}
	return st
}
