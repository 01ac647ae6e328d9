package policy

// Org and project names are checked where they are created (the admin API) and wherever a
// check reads one (a request path, a route's context_extensions, the default target), with
// the same rules: a name that could never be created can never be checked.

// OrgNameRule and ProjectNameRule say in words what ValidOrgName and ValidProjectName accept.
const (
	OrgNameRule     = "1-40 characters of a-z, 0-9 and -, starting with a letter or digit"
	ProjectNameRule = "1-64 characters of A-Z, a-z, 0-9, _ and -, starting with a letter or digit"
)

// ValidOrgName reports whether s is an org name (a slug): 1-40 of a-z, 0-9 and -, not
// starting with -.
func ValidOrgName(s string) bool {
	if len(s) == 0 || len(s) > 40 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidProjectName reports whether s is a project name: 1-64 of A-Z, a-z, 0-9, _ and -,
// starting with a letter or digit.
func ValidProjectName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
