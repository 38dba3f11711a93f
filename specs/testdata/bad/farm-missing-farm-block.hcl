board_type "sim" {}

board "sim-01" {
  type = "sim"
  emulator "sim" {}
}

farm_settings {}
