package farm

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
)

// provenanceParts are the optional signature and sbom parts of a submission.
type provenanceParts struct {
	signature, sbom []byte
}

// read takes one signature or sbom part, within its own bound.
func (pp *provenanceParts) read(part *multipart.Part) error {
	name, limit, dst := part.FormName(), int64(MaxSignatureBytes), &pp.signature
	if name == "sbom" {
		limit, dst = MaxSBOMBytes, &pp.sbom
	}
	if *dst != nil {
		return badRequest("two %s parts", name)
	}
	b, err := io.ReadAll(io.LimitReader(part, limit+1))
	if err != nil {
		return badRequest("%s: %v", name, err)
	}
	if int64(len(b)) > limit {
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("%s larger than %d bytes", name, limit)}
	}
	if len(b) == 0 {
		return badRequest("%s part is empty", name)
	}
	*dst = b
	return nil
}
