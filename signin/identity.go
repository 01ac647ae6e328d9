// Package signin lets people sign in with the identity provider they already have: OpenID
// Connect providers for the web console (the authorization code flow with PKCE, state and nonce;
// ID tokens verified by coreos/go-oidc), and Admit, which says which of our users an identity
// is. It serves the console, never the check path: nothing here is imported by extauthz,
// resolver or policy, and nothing here is asked during a check.
package signin

// Identity is who a provider says signed in: what Admit decides on.
type Identity struct {
	// Provider is the configured name of the provider (oidc_providers[].name).
	Provider string
	// Subject is the provider's sub claim: stable at that provider, unlike the email.
	Subject string
	// Email is the claim named by email_claim (default email), lower-cased.
	Email string
	// EmailVerified is the email_verified claim; true when the provider sends none (such a
	// provider only issues verified addresses, as Entra ID's work accounts).
	EmailVerified bool
	// Groups is the claim named by groups_claim (none when it is not configured).
	Groups []string
}
