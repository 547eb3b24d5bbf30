// Package fhir is the hand-written FHIR R4 (4.0.1) JSON model shared by the
// EHR, the payer and the SMART app.
//
// It holds:
//
//   - structs for the datatypes and resources the sandbox uses, with only the
//     elements it uses (datatypes.go, the per-resource files); every element is
//     optional in Go (pointers, slices, omitempty strings) so that a decoded
//     resource re-encodes to the same JSON (R4 json.html);
//   - strict decoding (decode.go): duplicate keys, keys that differ only by
//     case, and case-variant spellings of modelled elements are refused,
//     because FHIR JSON is case-sensitive and Go's encoding/json is not;
//   - OperationOutcome and response writers (outcome.go);
//   - literal reference parsing and the id rule (reference.go).
//
// Elements the model does not know are ignored by the structs, never
// refused: services that must keep a body exactly store its bytes, not a
// re-encoding.
package fhir
