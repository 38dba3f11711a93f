farm "f" {}

board_type "sim" {}

board "sim-a" {
  type = "sim"
  emulator "sim" {}
}

rack "r1" {
  hub         = "tls://hub.lab.example:99999"
  credentials = "bundles/r1"
}
