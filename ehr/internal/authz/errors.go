package authz

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/ory/fosite"

	"dtrsandbox/shared/oautherr"
)

// fromFosite turns a fosite error into the RFC 6749 §5.2 error the client
// sees: fosite's error code and status, its description and hint as the
// error_description, the whole error as the cause for the log. Codes fosite
// invents beyond the RFCs become invalid_request, and anything that is not
// an RFC6749Error is a server_error.
func fromFosite(err error) *oautherr.Error {
	if err == nil {
		return nil
	}
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		var oe *oautherr.Error
		if errors.As(err, &oe) {
			return oe
		}
		return oautherr.ServerError("The server could not complete the request.").WithCause(err)
	}
	code, status := rfc.ErrorField, rfc.CodeField
	switch code {
	case oautherr.CodeInvalidRequest, oautherr.CodeInvalidClient, oautherr.CodeInvalidGrant,
		oautherr.CodeUnauthorizedClient, oautherr.CodeUnsupportedGrantType, oautherr.CodeInvalidScope,
		oautherr.CodeAccessDenied, oautherr.CodeUnsupportedResponseType, oautherr.CodeServerError,
		oautherr.CodeTemporarilyUnavailable, oautherr.CodeUnsupportedTokenType,
		"login_required", "consent_required", "interaction_required", "invalid_request_uri",
		"invalid_request_object", "request_not_supported", "request_uri_not_supported",
		"registration_not_supported", "unsupported_response_mode":
	default:
		code, status = oautherr.CodeInvalidRequest, http.StatusBadRequest
	}
	if status == 0 {
		status = http.StatusBadRequest
	}
	if code == oautherr.CodeServerError {
		return oautherr.ServerError("The server could not complete the request.").WithCause(err)
	}
	return &oautherr.Error{Code: code, Description: rfc.GetDescription(), Status: status, Cause: err}
}

// toFosite turns an *oautherr.Error from shared code (client authentication)
// into the fosite error of the same code, with its description as the hint
// and the original as the cause.
func toFosite(e *oautherr.Error) *fosite.RFC6749Error {
	var base *fosite.RFC6749Error
	switch e.Code {
	case oautherr.CodeInvalidClient:
		base = fosite.ErrInvalidClient
	case oautherr.CodeInvalidRequest:
		base = fosite.ErrInvalidRequest
	case oautherr.CodeUnauthorizedClient:
		base = fosite.ErrUnauthorizedClient
	case oautherr.CodeTemporarilyUnavailable:
		base = fosite.ErrTemporarilyUnavailable
	default:
		base = fosite.ErrServerError
	}
	out := base.WithWrap(e)
	if e.Description != "" {
		out = out.WithHint(e.Description)
	}
	return out
}

// logOAuthError logs a refusal at info and a failure at error level, with
// the cause (never sent to the client).
func logOAuthError(log *slog.Logger, msg string, e *oautherr.Error, attrs ...any) {
	attrs = append(attrs, "error", e.Code, "status", e.Status, "detail", e.Error())
	if e.Status >= 500 {
		log.Error(msg, attrs...)
		return
	}
	log.Info(msg, attrs...)
}
