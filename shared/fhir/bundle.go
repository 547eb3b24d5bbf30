// Bundle of FHIR R4 (bundle.html): search results, transaction responses and
// the DTR questionnaire package. Entry resources stay raw JSON; decode each
// with Decode into the type its resourceType names.

package fhir

import "encoding/json"

// Bundle is a container for a collection of resources (R4 bundle.html).
// Bundle is a Resource, not a DomainResource: it has no text, extension or
// contained.
type Bundle struct {
	ResourceType string        `json:"resourceType,omitempty"`
	ID           string        `json:"id,omitempty"`
	Meta         *Meta         `json:"meta,omitempty"`
	Identifier   *Identifier   `json:"identifier,omitempty"`
	Type         string        `json:"type,omitempty"`
	Timestamp    string        `json:"timestamp,omitempty"`
	Total        *int          `json:"total,omitempty"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// BundleLink is a related link, such as self or next (Bundle.link).
type BundleLink struct {
	Relation string `json:"relation,omitempty"`
	URL      string `json:"url,omitempty"`
}

// BundleEntry is one entry of a Bundle (Bundle.entry).
type BundleEntry struct {
	Link     []BundleLink         `json:"link,omitempty"`
	FullURL  string               `json:"fullUrl,omitempty"`
	Resource json.RawMessage      `json:"resource,omitempty"`
	Search   *BundleEntrySearch   `json:"search,omitempty"`
	Request  *BundleEntryRequest  `json:"request,omitempty"`
	Response *BundleEntryResponse `json:"response,omitempty"`
}

// BundleEntrySearch says why an entry is in a search set (Bundle.entry.search);
// Mode is "match", "include" or "outcome".
type BundleEntrySearch struct {
	Mode  string   `json:"mode,omitempty"`
	Score *Decimal `json:"score,omitempty"`
}

// BundleEntryRequest is the request of a batch or transaction entry
// (Bundle.entry.request).
type BundleEntryRequest struct {
	Method          string `json:"method,omitempty"`
	URL             string `json:"url,omitempty"`
	IfNoneMatch     string `json:"ifNoneMatch,omitempty"`
	IfModifiedSince string `json:"ifModifiedSince,omitempty"`
	IfMatch         string `json:"ifMatch,omitempty"`
	IfNoneExist     string `json:"ifNoneExist,omitempty"`
}

// BundleEntryResponse is the result of a batch or transaction entry
// (Bundle.entry.response).
type BundleEntryResponse struct {
	Status       string          `json:"status,omitempty"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}
