package policy

// Rill runtime permissions: the numbers in the ins and sys claims of a runtime JWT, as
// rilldata/rill's runtime/security.go numbers them (runtime.Permission).
const (
	RuntimeManageInstances = 0x01
	RuntimeReadInstance    = 0x11
	RuntimeEditTrigger     = 0x20
	RuntimeReadObjects     = 0x15
	RuntimeReadMetrics     = 0x17
	RuntimeReadAPI         = 0x19
	RuntimeReadResolvers   = 0x1A
	RuntimeUseAI           = 0x1B
)

// RuntimePerms are the runtime permissions a prod deployment's JWT grants for project
// permissions p, as rilldata/rill's admin/server/runtime_jwt.go (issueRuntimeToken) derives
// them for a non-dev deployment: anyone who reads prod gets ReadObjects, ReadMetrics, ReadAPI
// and UseAI; manage_prod or manage_project adds ReadResolvers and EditTrigger; manage_project
// adds ReadInstance. Without read_prod there are none (Rill issues no token then).
func RuntimePerms(p Perm) []int {
	if !p.Has(ReadProd) {
		return []int{}
	}
	out := []int{RuntimeReadObjects, RuntimeReadMetrics, RuntimeReadAPI, RuntimeUseAI}
	if p&(ManageProd|ManageProject) != 0 {
		out = append(out, RuntimeReadResolvers, RuntimeEditTrigger)
	}
	if p.Has(ManageProject) {
		out = append(out, RuntimeReadInstance)
	}
	return out
}
