farm "f" {}
board_type "t" {}

board "b1" {
  type = "t"
  emulator "renode" {}
}
