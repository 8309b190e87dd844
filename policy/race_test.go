//go:build race

package policy_test

// raceEnabled scales the generated tests down under the race detector.
const raceEnabled = true
