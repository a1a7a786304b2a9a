package cluster

import (
	"strings"
	"testing"
)

// The issuer check (issuer-check.sh.tmpl) against stand-ins: curl serves the issuer's documents
// from $STUB_STATE (403 when $STUB_STATE/blocked exists, as an account-wide Block Public Access
// answers) and answers STS (a refusal when $STUB_STATE/refuse exists); kubectl issues a token.

const issuerCheckToken = "eyJ.SECRET-TOKEN.sig"

func issuerCheckStubs() map[string]string {
	return map[string]string{
		"kubectl": `
case "$*" in
  *"create token cloud-controller-manager -n kube-system --audience sts.amazonaws.com --duration 10m") echo "` + issuerCheckToken + `" ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac`,
		"curl": `
out=""; prev=""
for a in "$@"; do [ "${prev}" = -o ] && out=${a}; prev=${a}; done
case " $* " in
  *"/.well-known/openid-configuration "* | *"/openid/v1/jwks "*)
    if [ -e "$STUB_STATE/blocked" ]; then echo "curl: (22) The requested URL returned error: 403" >&2; exit 22; fi
    case " $* " in *"/openid/v1/jwks "*) cat "$STUB_STATE/jwks" > "${out}" ;; *) cat "$STUB_STATE/discovery" > "${out}" ;; esac ;;
  *" https://sts.ap-northeast-2.amazonaws.com/ "*)
    if [ -e "$STUB_STATE/refuse" ]; then
      printf '<ErrorResponse>\n<Error><Code>InvalidIdentityToken</Code>\n<Message>No OpenIDConnect provider found in your account</Message></Error></ErrorResponse>' > "${out}"
      printf 400
    else
      printf '<AssumeRoleWithWebIdentityResponse><Credentials><AccessKeyId>ASIAISSUERCHECK</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResponse>' > "${out}"
      printf 200
    fi ;;
  *) echo "unexpected curl $*" >&2; exit 1 ;;
esac`,
	}
}

// TestTheIssuerIsCheckedAsSTSUsesIt: the check passes only when both documents are served,
// anonymously, exactly as published, and STS exchanges a real token for the probe role; each
// failure names its cause and what to do, and the token never reaches a command line or the log.
func TestTheIssuerIsCheckedAsSTSUsesIt(t *testing.T) {
	cfg := prodConfig(t)
	issuer := cfg.ServiceAccountIssuer()
	const jwks = `{"keys":[{"alg":"RS256","e":"AQAB","kid":"k1","kty":"RSA","n":"abc","use":"sig"}]}`
	const roleARN = "arn:aws:iam::123456789012:role/prod-sesacthon-ccm-0001"
	script := IssuerCheckScript(IssuerCheck{Issuer: issuer, Bucket: cfg.PodIdentity.BucketName, Region: cfg.Region,
		Discovery: `{"issuer":"` + issuer + `"}`, JWKS: jwks, Namespace: "kube-system", ServiceAccount: "cloud-controller-manager", RoleARN: roleARN})
	for _, tc := range []struct {
		name        string
		state       map[string]string
		wantOK      bool
		wantMessage string
	}{
		{"works", map[string]string{"discovery": `{"issuer":"` + issuer + `"}`, "jwks": jwks}, true, "the pods' issuer " + issuer + " works"},
		{"account blocks public reads", map[string]string{"discovery": "", "jwks": jwks, "blocked": ""}, false, "BlockPublicPolicy and RestrictPublicBuckets must be off"},
		{"stale key set", map[string]string{"discovery": `{"issuer":"` + issuer + `"}`, "jwks": `{"keys":[]}`}, false, "does not serve the published document"},
		{"STS refuses", map[string]string{"discovery": `{"issuer":"` + issuer + `"}`, "jwks": jwks, "refuse": ""}, false,
			"HTTP 400, InvalidIdentityToken: No OpenIDConnect provider found in your account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t)
			for name, content := range tc.state {
				root.stubState(t, name, content)
			}
			r := root.run(script, scriptCase{stubs: issuerCheckStubs()})
			if (r.code == 0) != tc.wantOK || !strings.Contains(r.output(), tc.wantMessage) {
				t.Fatalf("want success %v saying %q:\n%s", tc.wantOK, tc.wantMessage, r.describe())
			}
			if strings.Contains(r.output(), issuerCheckToken) {
				t.Errorf("the token is in the step's output:\n%s", r.output())
			}
			for _, c := range r.called("curl") {
				if strings.Contains(c.String(), issuerCheckToken) {
					t.Errorf("the token is on curl's command line: %s", c)
				}
			}
			if tc.wantOK {
				sts := r.called("curl", "-sS")
				if len(sts) != 1 || !strings.Contains(sts[0].String(), "RoleArn="+roleARN) || !strings.Contains(sts[0].String(), "WebIdentityToken@") {
					t.Errorf("STS calls %v, want one AssumeRoleWithWebIdentity of %s with the token read from its file", sts, roleARN)
				}
			}
		})
	}
}
