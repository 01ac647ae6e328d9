package signin

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// ProviderConfig is one entry of the config file's oidc_providers list.
type ProviderConfig struct {
	// Name names the provider in the callback URL (/ui/oidc/<name>/callback), the sign-in
	// button and the audit log: 1-40 of [a-z0-9-].
	Name string
	// Issuer is the provider's issuer URL; discovery reads <issuer>/.well-known/openid-configuration.
	Issuer   string
	ClientID string
	// ClientSecretFile holds the client secret; RILL_AUTHD_OIDC_<NAME>_CLIENT_SECRET (the name
	// upper-cased, - as _) is read when it is not set.
	ClientSecretFile string
	// Scopes asked for (default openid, email, profile; openid is always asked for).
	Scopes []string
	// EmailClaim is the ID token claim holding the email (default email).
	EmailClaim string
	// GroupsClaim is the ID token claim holding the user's IdP groups (none by default).
	GroupsClaim string
	// AllowedDomains, when set, are the only email domains that may sign in with the provider.
	AllowedDomains []string
}

// ConfigKeys are the keys of an oidc_providers entry.
var ConfigKeys = []string{"allowed_domains", "client_id", "client_secret_file", "email_claim", "groups_claim", "issuer", "name", "scopes"}

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// SecretEnv is the environment variable that holds the client secret of provider name.
func SecretEnv(name string) string {
	return "RILL_AUTHD_OIDC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_CLIENT_SECRET"
}

// Check refuses a provider list the daemon could not use, naming the entry: what a config file
// mistake is told as (it does not read the secret: see LoadSecret).
func Check(ps []ProviderConfig) error {
	seen := map[string]bool{}
	for i, p := range ps {
		where := fmt.Sprintf("oidc_providers[%d]", i)
		if p.Name != "" {
			where += " (" + p.Name + ")"
		}
		switch {
		case p.Name == "":
			return fmt.Errorf("%s: name is required (it names the callback: /ui/oidc/<name>/callback)", where)
		case !nameRe.MatchString(p.Name):
			return fmt.Errorf("%s: name must be 1-40 of a-z, 0-9 and - (it is part of the callback URL)", where)
		case seen[p.Name]:
			return fmt.Errorf("%s: name is given twice", where)
		case p.Issuer == "":
			return fmt.Errorf("%s: issuer is required (the provider's issuer URL, such as https://accounts.google.com)", where)
		case p.ClientID == "":
			return fmt.Errorf("%s: client_id is required (the client registered at the provider)", where)
		}
		seen[p.Name] = true
		u, err := url.Parse(p.Issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("%s: issuer %q is not an http(s) URL", where, p.Issuer)
		}
		for _, d := range p.AllowedDomains {
			if d == "" || strings.ContainsAny(d, "@/ ") || strings.HasPrefix(d, ".") {
				return fmt.Errorf("%s: allowed_domains: %q is not a domain (example.com)", where, d)
			}
		}
	}
	return nil
}

// LoadSecret reads the client secret of p: client_secret_file, else the environment.
func LoadSecret(p ProviderConfig) (string, error) {
	if p.ClientSecretFile != "" {
		b, err := os.ReadFile(p.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("oidc provider %s: client_secret_file: %w", p.Name, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("oidc provider %s: client_secret_file %s is empty", p.Name, p.ClientSecretFile)
		}
		return s, nil
	}
	if s := strings.TrimSpace(os.Getenv(SecretEnv(p.Name))); s != "" {
		return s, nil
	}
	return "", errors.New("oidc provider " + p.Name + ": no client secret: set client_secret_file or " + SecretEnv(p.Name) +
		" (the console is a confidential client; the secret also keys the sign-in cookie, so every replica can finish a sign-in)")
}
