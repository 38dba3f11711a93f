# A farm that is also rack "r1" of a multi-rack farm (docs/racks.md).
farm "bench-3" {
  data_dir = "data"
}

board_type "sim" {}

board "sim-a" {
  type = "sim"
  emulator "sim" {}
}

rack "r1" {
  hub         = "tls://hub.lab.example:7422"
  credentials = "/etc/hilfarm/farm/bundles/r1"
}
