farm "f" {}

board_type "Sim_Board" {}

board "sim-a" {
  type = "Sim_Board"
  emulator "sim" {}
}

rack "R1" {
  hub         = "nats://hub.lab.example"
  credentials = ""
}

rack "r2" {
  hub = "tls://hub.lab.example:7422"
}
