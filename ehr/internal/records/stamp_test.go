package records

import (
	"testing"
	"time"
)

func TestStamp(t *testing.T) {
	at := time.Date(2026, 2, 16, 14, 35, 0, 123_456_789, time.FixedZone("EST", -5*3600))
	const lu = `"lastUpdated":"2026-02-16T19:35:00.123Z"`
	tests := []struct {
		name, in, want string
	}{
		{"adds id and meta after resourceType",
			`{"resourceType":"Basic", "code": {"text":"x"}}`,
			`{"resourceType":"Basic","id":"b1","meta":{"versionId":"3",` + lu + `},"code":{"text":"x"}}`},
		{"replaces id and server meta, keeps the rest in order",
			`{"status":"final","id":"old","resourceType":"Basic","meta":{"profile":["p"],"lastUpdated":"2000-01-01T00:00:00Z","versionId":"9","source":"s"},"n":1.50}`,
			`{"status":"final","id":"b1","resourceType":"Basic","meta":{"profile":["p"],"lastUpdated":"2026-02-16T19:35:00.123Z","versionId":"3","source":"s"},"n":1.50}`},
		{"meta without server fields",
			`{"resourceType":"Basic","meta":{"tag":[{"code":"t"}]}}`,
			`{"resourceType":"Basic","id":"b1","meta":{"versionId":"3",` + lu + `,"tag":[{"code":"t"}]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stamp([]byte(tc.in), "Basic", "b1", 3, at)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{
		`{"resourceType":"Patient"}`,
		`{"resourceType":"Basic","resourceType":"Basic"}`,
		`{"resourceType":"Basic","meta":"x"}`,
		`{"id":"x"}`,
		`"Basic"`,
		`{"resourceType":"Basic"`,
		`{"resourceType":"Basic"}{}`,
	} {
		if got, err := stamp([]byte(bad), "Basic", "b1", 1, at); err == nil {
			t.Errorf("%s accepted: %s", bad, got)
		}
	}
}
