package capability

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/fhir"
)

func TestMetadata(t *testing.T) {
	h, err := Handler(Config{FHIRBase: "https://p/fhir", TokenURL: "https://p/oauth/token", RegistrationURL: "https://p/oauth/register", SMARTConfigURL: "https://p/fhir/.well-known/smart-configuration"})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET("/fhir/metadata", h)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/fhir/metadata", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type")[:len(fhir.ContentType)] != fhir.ContentType {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var cs fhir.CapabilityStatement
	if err := fhir.Decode(rec.Body.Bytes(), &cs); err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, r := range cs.Rest[0].Resource {
		types[r.Type] = true
	}
	for _, want := range []string{"Questionnaire", "DocumentReference", "QuestionnaireResponse"} {
		if !types[want] {
			t.Errorf("missing %s", want)
		}
	}
	var raw map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	ext := cs.Rest[0].Security.Extension
	if len(ext) != 1 || ext[0].URL != fhir.OAuthURIsExtension || ext[0].Extension[0].ValueURI != "https://p/oauth/token" {
		t.Fatalf("oauth-uris %+v", ext)
	}
}
