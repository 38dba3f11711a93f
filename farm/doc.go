// Package farm is the controller: it owns every board's hardware for its
// whole life (power lines held, consoles open and recorded from power-on),
// keeps the queue and the job lifecycle in the store, leases boards to jobs,
// runs them with package runner, and serves the HTTP API.
//
// Concurrency: one Recorder goroutine per board console; every other
// component is started and stopped by its owner and documents its own rules.
package farm
