// Package grantsvc runs time-bound access grants (package policy/grants) on
// Temporal itself: each grant is a workflow in the grants namespace, with
// request, approval, denial and revocation as calls checked by the frontend
// and decided by the policy, expiry as the workflow's timer, and every
// frontend following the active grants through visibility.
package grantsvc
