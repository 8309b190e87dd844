# METADATA
# title: Kubernetes workers
# description: |
#   Roles for Kubernetes service accounts: a service-account token (sub
#   system:serviceaccount:<namespace>:<name>, with its kubernetes.io claims)
#   verified by a cluster issuer of data.temporal.custom.kubernetes_workers.issuers
#   (input.claims.issuer) gets the namespace roles listed for
#   "<namespace>/<name>" in data.temporal.custom.kubernetes_workers.service_accounts,
#   e.g. {"payments/payments-worker": {"payments": ["worker"]}}. The sub claim
#   and the kubernetes.io claims must name the same service account. A token of
#   another issuer gets nothing, whatever its sub says. Only namespace roles are
#   granted, never system roles. The default policy counts them exactly as the
#   roles of the caller's token.
package temporal.custom.kubernetes_workers

# METADATA
# title: Namespace roles of the service account
# description: |
#   The roles the table lists for the caller's service account, on each
#   Temporal namespace.
namespace_roles[ns] contains role if {
	some ns, roles in data.temporal.custom.kubernetes_workers.service_accounts[service_account]
	some role in roles
	is_string(role)
}

# METADATA
# title: Service account
# description: |
#   The caller's service account as "<namespace>/<name>", when the token was
#   verified by a listed cluster issuer and its sub and kubernetes.io claims
#   agree; undefined otherwise.
service_account := concat("/", [k8s.namespace, k8s.serviceaccount.name]) if {
	input.claims.issuer != ""
	input.claims.issuer in data.temporal.custom.kubernetes_workers.issuers
	k8s := input.claims.jwt["kubernetes.io"]
	is_string(k8s.namespace)
	is_string(k8s.serviceaccount.name)
	input.claims.jwt.sub == concat(":", ["system:serviceaccount", k8s.namespace, k8s.serviceaccount.name])
}
