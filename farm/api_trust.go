package farm

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/http"

	"github.com/hilfarm/hilfarm/specs"
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

func (a *API) trustRoutes() {
	m := a.mux
	m.Handle("GET /api/v1/jobs/{id}/verdict", a.handle(RoleViewer, a.verdict))
	m.Handle("GET /api/v1/jobs/{id}/sbom", a.handle(RoleViewer, a.sbom))
	m.Handle("GET /api/v1/verdict-key", a.handle(RoleViewer, a.verdictKey))
	m.Handle("GET /api/v1/trust", a.handle(RoleViewer, a.trust))
}

// verdict serves a finished job's signed verdict statement.
func (a *API) verdict(w http.ResponseWriter, r *http.Request, _ Principal) error {
	env, err := a.c.Verdict(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+r.PathValue("id")+`.verdict.json"`)
	return writeJSON(w, http.StatusOK, env)
}

// sbom serves the SBOM submitted with a job, as it was submitted.
func (a *API) sbom(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if _, err := a.c.Job(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	data, err := a.c.db.SBOM(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/vnd.cyclonedx+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	_, err = w.Write(data)
	return err
}

// verdictKey serves the farm's public verdict key (authorized_keys form).
func (a *API) verdictKey(w http.ResponseWriter, r *http.Request, _ Principal) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := io.WriteString(w, a.c.VerdictKey()+"\n")
	return err
}

// TrustView is the farm's trust policy as GET /api/v1/trust shows it.
type TrustView struct {
	Namespace  string                       `json:"namespace"`
	Mode       string                       `json:"mode"`
	Keys       []specs.TrustedKey           `json:"keys"`
	BoardTypes map[string]specs.TrustPolicy `json:"board_types"`
	VerdictKey string                       `json:"verdict_key"`
}

func (a *API) trust(w http.ResponseWriter, r *http.Request, _ Principal) error {
	t := a.c.cfg.Farm.Trust
	p := t.For("")
	v := TrustView{Namespace: p.Namespace, Mode: p.Mode, Keys: p.Keys, BoardTypes: map[string]specs.TrustPolicy{}, VerdictKey: a.c.VerdictKey()}
	if v.Keys == nil {
		v.Keys = []specs.TrustedKey{}
	}
	for _, bt := range a.c.cfg.Farm.BoardTypes {
		v.BoardTypes[bt.Name] = t.For(bt.Name)
	}
	return writeJSON(w, http.StatusOK, v)
}
