package extauthz

// ClientAddr is clientAddr, for the external tests.
var ClientAddr = clientAddr
