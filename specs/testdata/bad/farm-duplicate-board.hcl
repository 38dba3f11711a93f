farm "f" {}
board_type "sim" {}

board "sim-01" {
  type = "sim"
  emulator "sim" {}
}

board "sim-01" {
  type = "sim"
  emulator "sim" {}
}
