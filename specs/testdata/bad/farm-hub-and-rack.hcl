# One farm file is a hub or a rack, not both.
farm "f" {}

board_type "sim" {}

board "sim-a" {
  type = "sim"
  emulator "sim" {}
}

rack "r1" {
  hub         = "tls://hub.lab.example:7422"
  credentials = "/etc/hilfarm/farm/bundles/r1"
}

hub {
  dir = "/etc/hilfarm/farm"
}
