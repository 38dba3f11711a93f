farm "f" {}
board_type "t" {}

board "b1" {
  type = "t"
  power "command" {
    on  = []
    off = "uhubctl -a off"
  }
  console "serial" {
    port = ""
  }
}
