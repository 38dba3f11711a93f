package farm

import (
	"testing"
	"time"
)

func TestCampaignEstimate(t *testing.T) {
	s := time.Second
	cases := []struct {
		name       string
		tests      []campaignTest
		iter       map[string]time.Duration
		boards     int
		wall, work time.Duration
		ok         bool
	}{
		{"count × iteration time", []campaignTest{{Name: "a", Count: 200}}, map[string]time.Duration{"a": 3 * s}, 4, 600 * s, 600 * s, true},
		{"divided by its spread", []campaignTest{{Name: "a", Count: 200, Spread: 2}}, map[string]time.Duration{"a": 3 * s}, 4, 300 * s, 600 * s, true},
		{"spread capped by the boards", []campaignTest{{Name: "a", Count: 200, Spread: 8}}, map[string]time.Duration{"a": 3 * s}, 3, 200 * s, 600 * s, true},
		{"bounded by its duration", []campaignTest{{Name: "a", Count: 200, Duration: 100 * s, Spread: 2}}, map[string]time.Duration{"a": 3 * s}, 2, 100 * s, 200 * s, true},
		{"no history: its duration", []campaignTest{{Name: "a", Count: 200, Duration: 50 * s}}, nil, 2, 50 * s, 50 * s, true},
		{"duration only, spread", []campaignTest{{Name: "a", Duration: 50 * s, Spread: 2}}, map[string]time.Duration{"a": s}, 2, 50 * s, 100 * s, true},
		{"two campaigns add up", []campaignTest{{Name: "a", Count: 10}, {Name: "b", Count: 4, Spread: 2}}, map[string]time.Duration{"a": s, "b": 5 * s}, 2, 20 * s, 30 * s, true},
		{"nothing known", []campaignTest{{Name: "a", Count: 10}}, map[string]time.Duration{"b": s}, 2, 0, 0, false},
	}
	for _, tc := range cases {
		wall, work, ok := campaignEstimate(tc.tests, tc.iter, tc.boards)
		if wall != tc.wall || work != tc.work || ok != tc.ok {
			t.Errorf("%s: wall %v work %v ok %v; want %v %v %v", tc.name, wall, work, ok, tc.wall, tc.work, tc.ok)
		}
	}
}
