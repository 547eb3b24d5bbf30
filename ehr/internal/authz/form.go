package authz

import (
	"mime"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/oautherr"
)

// MaxFormBytes caps OAuth request bodies (forms and registration JSON).
const MaxFormBytes = 64 << 10

// readPostForm reads an application/x-www-form-urlencoded POST body (RFC
// 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1): POST only, at most
// MaxFormBytes, no parameter in the query string (credentials and codes do
// not belong in URLs), no parameter repeated (RFC 6749 §3.1, §3.2).
func readPostForm(c *gin.Context) (url.Values, *oautherr.Error) {
	r := c.Request
	if r.Method != http.MethodPost {
		return nil, oautherr.InvalidRequest("Use POST.")
	}
	if r.URL.RawQuery != "" {
		return nil, oautherr.InvalidRequest("Send the parameters in the request body, not in the query string.")
	}
	form, e := readFormBody(c)
	if e != nil {
		return nil, e
	}
	if e := singleValued(form); e != nil {
		return nil, e
	}
	return form, nil
}

// readFormBody parses the application/x-www-form-urlencoded body of a POST,
// at most MaxFormBytes (413 beyond).
func readFormBody(c *gin.Context) (url.Values, *oautherr.Error) {
	r := c.Request
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oautherr.InvalidRequest("The body must be application/x-www-form-urlencoded.")
	}
	if httpserver.DeclaredTooLarge(c) || r.ContentLength > MaxFormBytes {
		return nil, tooLarge()
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		if httpserver.IsTooLarge(err) {
			return nil, tooLarge()
		}
		return nil, oautherr.InvalidRequest("The body is not a valid form.").WithCause(err)
	}
	return r.PostForm, nil
}

func tooLarge() *oautherr.Error {
	return oautherr.New(oautherr.CodeInvalidRequest, http.StatusRequestEntityTooLarge, "The body is larger than %d bytes.", MaxFormBytes)
}

// singleValued refuses a repeated parameter (RFC 6749 §3.1: "Request and
// response parameters MUST NOT be included more than once").
func singleValued(v url.Values) *oautherr.Error {
	for k, vs := range v {
		if len(vs) > 1 {
			return oautherr.InvalidRequest("The %s parameter is repeated.", clip(k))
		}
	}
	return nil
}
