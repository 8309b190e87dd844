package temporal.custom.claims

deny contains "contractors may not terminate" if {
	input.target.method == "TerminateWorkflowExecution"
	"contractors" in input.claims.jwt.groups
}

deny contains "red team is read-only here" if {
	input.target.access == "write"
	input.claims.jwt.org.team == "red"
}
