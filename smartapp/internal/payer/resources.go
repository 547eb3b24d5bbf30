package payer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/smartapp/internal/session"
)

// Package is the answer of $questionnaire-package: the questionnaires in
// every returned package bundle, raw (LHC-Forms needs every element, not
// only those the Go model knows).
type Package struct {
	Questionnaires []json.RawMessage
}

// QuestionnairePackage calls POST {payer}/Questionnaire/$questionnaire-package
// (Da Vinci DTR 2.0.1 §"Questionnaire package operation") with the Coverage
// and the order read from the EHR. The answer is a Parameters resource with
// one PackageBundle Bundle per questionnaire (DTR 2.x output profile); a bare
// Bundle is accepted too.
func (c *Client) QuestionnairePackage(ctx context.Context, s *session.Session, coverage, order json.RawMessage) (*Package, error) {
	in := fhir.Parameters{ResourceType: "Parameters", Parameter: []fhir.ParametersParameter{
		{Name: "coverage", Resource: coverage},
		{Name: "order", Resource: order},
	}}
	const op = "load the questionnaire"
	resp, err := c.Do(ctx, s, Request{Op: op, Method: http.MethodPost, Path: "Questionnaire/$questionnaire-package", Body: in})
	if err != nil {
		return nil, err
	}
	rt, err := fhir.ResourceType(resp.Body)
	if err != nil {
		return nil, &Error{Op: op, Status: resp.Status, Message: "The payer's questionnaire package is not valid FHIR JSON.", Cause: err}
	}
	var bundles []json.RawMessage
	switch rt {
	case "Parameters":
		var out fhir.Parameters
		if err := fhir.Decode(resp.Body, &out); err != nil {
			return nil, &Error{Op: op, Status: resp.Status, Message: "The payer's questionnaire package is not valid FHIR JSON.", Cause: err}
		}
		for _, p := range out.Parameter {
			if p.Name == "PackageBundle" && len(p.Resource) > 0 {
				bundles = append(bundles, p.Resource)
			}
		}
	case "Bundle":
		bundles = append(bundles, resp.Body)
	default:
		return nil, &Error{Op: op, Status: resp.Status, Message: "The payer answered a " + rt + " instead of a questionnaire package."}
	}
	pkg := &Package{}
	for _, raw := range bundles {
		var b fhir.Bundle
		if err := fhir.Decode(raw, &b); err != nil {
			return nil, &Error{Op: op, Status: resp.Status, Message: "A questionnaire package bundle is not valid FHIR JSON.", Cause: err}
		}
		for _, e := range b.Entry {
			if t, err := fhir.ResourceType(e.Resource); err == nil && t == "Questionnaire" {
				pkg.Questionnaires = append(pkg.Questionnaires, e.Resource)
			}
		}
	}
	if len(pkg.Questionnaires) == 0 {
		return nil, &Error{Op: op, Status: resp.Status, Message: "The payer has no questionnaire for this order and coverage."}
	}
	return pkg, nil
}

// Stored is a DocumentReference as the payer holds it.
type Stored struct {
	ID        string
	VersionID string
	Doc       fhir.DocumentReference
	Raw       json.RawMessage
}

func stored(op string, resp *Response) (*Stored, error) {
	st := &Stored{VersionID: resp.VersionID}
	if len(resp.Body) > 0 {
		if err := fhir.Decode(resp.Body, &st.Doc); err != nil {
			return nil, &Error{Op: op, Status: resp.Status, Message: "The payer's DocumentReference is not valid FHIR JSON.", Cause: err}
		}
		st.ID, st.Raw = st.Doc.ID, resp.Body
		if st.VersionID == "" && st.Doc.Meta != nil {
			st.VersionID = st.Doc.Meta.VersionID
		}
	}
	if st.ID == "" && resp.Location != "" {
		// Location: [base]/DocumentReference/[id]/_history/[vid] (R4 http.html#create)
		if _, typ, id, ok := fhir.ParseReference(strings.Split(resp.Location, "/_history/")[0]); ok && typ == "DocumentReference" {
			st.ID = id
		}
		if _, v, ok := strings.Cut(resp.Location, "/_history/"); ok && st.VersionID == "" {
			st.VersionID = v
		}
	}
	if st.ID == "" {
		return nil, &Error{Op: op, Status: resp.Status, Message: "The payer did not say which id it gave the document."}
	}
	return st, nil
}

// CreateDocumentReference stores doc at the payer (POST, R4 http.html#create).
func (c *Client) CreateDocumentReference(ctx context.Context, s *session.Session, op string, doc *fhir.DocumentReference) (*Stored, error) {
	resp, err := c.Do(ctx, s, Request{Op: op, Method: http.MethodPost, Path: "DocumentReference", Body: doc})
	if err != nil {
		return nil, err
	}
	return stored(op, resp)
}

// UpdateDocumentReference replaces the document id at the payer (PUT, R4
// http.html#update) only if its current version is versionID (If-Match,
// R4 http.html#concurrency): the payer answers 412 otherwise.
func (c *Client) UpdateDocumentReference(ctx context.Context, s *session.Session, op, id, versionID string, doc *fhir.DocumentReference) (*Stored, error) {
	if !fhir.ValidID(id) {
		return nil, &Error{Op: op, Message: "The draft's id is not a valid FHIR id."}
	}
	d := *doc
	d.ID = id
	resp, err := c.Do(ctx, s, Request{Op: op, Method: http.MethodPut, Path: "DocumentReference/" + id, Body: &d, IfMatch: versionID})
	if err != nil {
		return nil, err
	}
	st, err := stored(op, resp)
	if err != nil {
		return nil, err
	}
	if st.Raw == nil { // an update answered without a body
		st.Doc, st.ID = d, id
	}
	return st, nil
}

// ReadDocumentReference reads one document.
func (c *Client) ReadDocumentReference(ctx context.Context, s *session.Session, op, id string) (*Stored, error) {
	if !fhir.ValidID(id) {
		return nil, &Error{Op: op, Status: http.StatusNotFound, Message: "No such document."}
	}
	resp, err := c.Do(ctx, s, Request{Op: op, Method: http.MethodGet, Path: "DocumentReference/" + id})
	if err != nil {
		return nil, err
	}
	return stored(op, resp)
}

// SearchDocumentReferences searches the payer's documents (R4
// http.html#search). The payer confines every search to the EHR token's
// patient whatever the parameters say; it follows no next links beyond
// maxPages.
func (c *Client) SearchDocumentReferences(ctx context.Context, s *session.Session, op string, params url.Values) ([]Stored, error) {
	const maxPages = 5
	resp, err := c.Do(ctx, s, Request{Op: op, Method: http.MethodGet, Path: "DocumentReference", Query: params})
	if err != nil {
		return nil, err
	}
	var out []Stored
	for page := 0; ; page++ {
		var b fhir.Bundle
		if err := fhir.Decode(resp.Body, &b); err != nil || b.ResourceType != "Bundle" {
			return nil, &Error{Op: op, Status: resp.Status, Message: "The payer's search answer is not a FHIR Bundle.", Cause: err}
		}
		for _, e := range b.Entry {
			if e.Search != nil && e.Search.Mode != "" && e.Search.Mode != "match" {
				continue
			}
			if t, err := fhir.ResourceType(e.Resource); err != nil || t != "DocumentReference" {
				continue
			}
			var st Stored
			if err := fhir.Decode(e.Resource, &st.Doc); err != nil {
				continue
			}
			st.ID, st.Raw = st.Doc.ID, e.Resource
			if st.Doc.Meta != nil {
				st.VersionID = st.Doc.Meta.VersionID
			}
			out = append(out, st)
		}
		next := ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		if next == "" || page+1 >= maxPages {
			return out, nil
		}
		path, query, err := c.relative(next)
		if err != nil {
			return out, nil // a next link elsewhere is not followed
		}
		resp, err = c.Do(ctx, s, Request{Op: op, Method: http.MethodGet, Path: path, Query: query})
		if err != nil {
			return nil, err
		}
	}
}

// relative turns a next link under the payer base into a path and query;
// links to anywhere else are refused (the tokens must not travel there).
func (c *Client) relative(link string) (string, url.Values, error) {
	if !strings.HasPrefix(link, c.cfg.FHIRBase+"/") {
		return "", nil, fmt.Errorf("link %q is outside the payer base", link)
	}
	u, err := url.Parse(link)
	if err != nil {
		return "", nil, err
	}
	base, _ := url.Parse(c.cfg.FHIRBase)
	return strings.TrimPrefix(u.Path, base.Path+"/"), u.Query(), nil
}
