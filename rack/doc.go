// Package rack carries work between one hub (the front door) and many racks
// over an embedded NATS JetStream server. The hub embeds nats-server with
// JetStream and a TLS leaf-node listener; a rack embeds its own nats-server
// that dials out to the hub as a leaf node, so a rack opens no inbound port.
//
// What travels:
//   - jobs: stream JOBS (WorkQueue, subjects jobs.<type>), one durable pull
//     consumer bt-<type> per board type. A rack pulls one job per idle,
//     healthy board and never more (no hoarding).
//   - attempts: before running a job a rack asks the hub for an attempt
//     (request/reply on farm.claim.<rack>). The hub is the authority: it
//     numbers attempts, supersedes older ones and refuses stale deliveries.
//     Racks never ack JOBS messages (a late ack would delete a redelivered
//     attempt's message, nats-server#4786); the hub deletes a job's message
//     by stream sequence when the job's verdict is decided.
//   - results: a rack writes them to a SQLite outbox first; a pump publishes
//     each row to stream EVENTS with Nats-Msg-Id <rack>.<seq> and marks it
//     sent on the PubAck, so a result reaches the hub exactly once after a
//     link returns. The hub ingests EVENTS in order and applies each result
//     to its attempt: only the current attempt may set the verdict.
//   - firmware: object store bucket "firmware", object name = sha256 hex;
//     racks cache files by digest and fetch each digest once.
//   - consoles: core subjects console.<rack>.<board>; bytes cross the link
//     only while a hub subscriber exists (NATS interest propagation).
//
// Security: a farm CA (NewCA) signs the hub's leaf certificate and one client
// certificate per rack; the hub requires both TLS client certificates from
// the farm CA and a per-rack password (bcrypt at the hub). Each rack's user
// may publish only on its own subjects and pull only its board types' work;
// it cannot use the JetStream admin API. Revoking a rack reloads the hub's
// users in place and closes the rack's link.
//
// Concurrency: Hub and Agent own their goroutines; Close stops them and
// waits. Their methods are safe for concurrent use.
package rack
