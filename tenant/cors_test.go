package tenant

import "testing"

func TestCORSPolicy(t *testing.T) {
	for _, tc := range []struct {
		origins []string
		any     bool
		allowed []string
		refused []string
	}{
		{[]string{"*"}, true, []string{"https://evil.example"}, nil},
		{[]string{"https://*"}, true, []string{"https://evil.example", "http://evil.example:8080"}, nil},
		{[]string{"*://*"}, true, nil, nil},
		{[]string{"http://*:*"}, true, nil, nil},
		{[]string{"https://*:443/"}, true, nil, nil},
		{[]string{"https://*.*"}, true, nil, nil},
		{[]string{"https://app.example.com", "https://??*"}, true, nil, nil},
		{[]string{"https://*.example.com"}, false, []string{"https://shop.example.com", "HTTPS://A.EXAMPLE.COM"},
			[]string{"https://example.com.evil.org", "https://evil.example"}},
		{[]string{"*://app.example.com:*"}, false, []string{"http://app.example.com:3000"}, []string{"https://evil.example"}},
		{[]string{"https://app.example.com"}, false, []string{"https://app.example.com"}, []string{"https://app.example.com.evil.org"}},
	} {
		p := NewCORSPolicy(CORSConfig{AllowedOrigins: tc.origins, AllowUnsafeWildcard: true})
		if p.AnyOrigin != tc.any {
			t.Errorf("%q: AnyOrigin %v, want %v", tc.origins, p.AnyOrigin, tc.any)
		}
		for _, o := range tc.allowed {
			if !p.Allows(o) {
				t.Errorf("%q refuses %s", tc.origins, o)
			}
		}
		for _, o := range tc.refused {
			if p.Allows(o) {
				t.Errorf("%q allows %s", tc.origins, o)
			}
		}
	}
}
