// Package documents is the payer's store of Da Vinci DTR documentation:
// DocumentReference resources whose attachment carries the
// QuestionnaireResponse (application/fhir+json, base64), and
// QuestionnaireResponse resources, with FHIR R4 create, read, search and
// version-aware update (R4 http.html), confined to the patient of the EHR
// launch (CONTRACT.md "Patient binding") and to callers that carry at least
// the creator's scopes (CONTRACT.md "Creator's scope").
//
// Bodies are stored as the client sent them, with only the server-owned
// elements set: id, meta.versionId, meta.lastUpdated, and subject when
// absent (then the launch patient). Search runs on index columns and an
// index table; the compiler (Compile) always puts the patient filter first.
// Every request writes exactly one AuditEvent; a write and its AuditEvent
// commit in one transaction.
//
// Routes (the gate's middleware in front must put an access.Principal with
// a verified payer token, a verified EHR token and the launch patient in
// the request context; "{T}" is each of DocumentReference and
// QuestionnaireResponse, registered as a literal segment, or as a ":type"
// parameter restricted to those two):
//
//	POST   /fhir/{T}                       h.Create
//	GET    /fhir/{T}                       h.Search
//	POST   /fhir/{T}/_search               h.Search   (application/x-www-form-urlencoded)
//	GET    /fhir/{T}/:id                   h.Read
//	PUT    /fhir/{T}/:id                   h.Update   (If-Match required)
//	DELETE /fhir/{T}/:id                   h.Delete            (405)
//	PATCH  /fhir/{T}/:id                   h.MethodNotAllowed  (405)
//	GET    /fhir/{T}/_history              h.History           (400)
//	GET    /fhir/{T}/:id/_history          h.History           (400)
//	GET    /fhir/{T}/:id/_history/:vid     h.History           (400)
//	GET    /fhir/_history                  h.History           (400)
//	POST   /fhir                           h.Batch             (400, batch/transaction)
//	GET    /fhir/Patient/:id/$everything   h.Everything        (400)
//	POST   /fhir/Patient/:id/$everything   h.Everything        (400)
//	GET    /fhir/Patient/$everything       h.Everything        (400)
//
// with
//
//	store, err := documents.NewStore(db)
//	h, err := documents.NewHandler(documents.Config{Store: store, Audit: auditStore, Base: fhirBase, Logger: log})
//
// The refusal routes need no principal (they return no data) but are
// audited with whatever principal the gate set.
package documents
