package main

import (
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"

	"github.com/hilfarm/hilfarm/farm"
)

// provenanceFiles are the signature and SBOM of a submission, read before
// the upload starts so a missing or oversized file fails at once.
type provenanceFiles struct {
	sigName, sbomName string
	sig, sbom         []byte
}

func readProvenance(opts submitOptions) (*provenanceFiles, error) {
	p := &provenanceFiles{}
	read := func(path, what string, limit int64) ([]byte, error) {
		if path == "" {
			return nil, nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, path, err)
		}
		if int64(len(b)) > limit {
			return nil, usageError("%s %s is larger than %d bytes", what, path, limit)
		}
		return b, nil
	}
	var err error
	if p.sig, err = read(opts.signature, "signature", farm.MaxSignatureBytes); err != nil {
		return nil, err
	}
	if p.sbom, err = read(opts.sbom, "sbom", farm.MaxSBOMBytes); err != nil {
		return nil, err
	}
	p.sigName, p.sbomName = filepath.Base(opts.signature), filepath.Base(opts.sbom)
	return p, nil
}

// write adds the signature and sbom parts (the API wants them before the firmware).
func (p *provenanceFiles) write(mw *multipart.Writer) error {
	for _, part := range []struct {
		field, name string
		data        []byte
	}{{"signature", p.sigName, p.sig}, {"sbom", p.sbomName, p.sbom}} {
		if part.data == nil {
			continue
		}
		w, err := mw.CreateFormFile(part.field, part.name)
		if err != nil {
			return err
		}
		if _, err := w.Write(part.data); err != nil {
			return err
		}
	}
	return nil
}
