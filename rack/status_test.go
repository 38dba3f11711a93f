package rack

import (
	"testing"
	"time"
)

// A rack's heartbeat carries its boards to the hub (Hub.Racks); a
// heartbeat the hub's own connection publishes under an unknown rack's
// name, or one that does not decode, is dropped.
func TestHeartbeatBoards(t *testing.T) {
	t.Parallel()
	f := newTestFarm(t, 30*time.Second, map[string][]string{"r1": {"stm32"}})
	f.addRack("r1", f.pw["r1"], newTestBoard("b1", "stm32"), newTestBoard("b2", "stm32"))
	start := time.Now()
	waitFor(t, 20*time.Second, "r1's boards at the hub", func() bool { return len(f.hub.Racks()) == 1 })
	t.Logf("r1's boards reached the hub %v after the rack started", time.Since(start).Round(time.Millisecond))
	st := f.hub.Racks()[0]
	if st.Rack != "r1" || len(st.Boards) != 2 || st.Boards[0] != (BoardStatus{Name: "b1", Type: "stm32", Healthy: true}) || st.Boards[1].Name != "b2" {
		t.Fatalf("Racks() = %+v; want r1 with b1 and b2 of type stm32, healthy", st)
	}
	nc := f.hub.Conn()
	_ = nc.Publish("farm.hb.ghost", []byte(`{"boards":[{"name":"x","type":"stm32","healthy":true}]}`))
	_ = nc.Publish("farm.hb.r1", []byte(`not json`))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The hub handles its connection's messages in order: once a marker
	// heartbeat after the bad ones shows, they were handled. (It is sent
	// again while the rack's own heartbeats may overwrite it.)
	waitFor(t, 10*time.Second, "the marker heartbeat", func() bool {
		_ = nc.Publish("farm.hb.r1", []byte(`{"boards":[{"name":"b9","type":"stm32","healthy":false}]}`))
		_ = nc.Flush()
		rs := f.hub.Racks()
		return len(rs) == 1 && len(rs[0].Boards) == 1 && rs[0].Boards[0].Name == "b9"
	})
	if rs := f.hub.Racks(); len(rs) != 1 || rs[0].Rack != "r1" {
		t.Errorf("Racks() = %+v; want r1 only (the ghost rack's heartbeat dropped)", rs)
	}
}
