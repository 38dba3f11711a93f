farm "lab" {}

board_type "nucleo" {}

board "n1" {
  type = "nucleo"
  power "command" {
    on  = ["true"]
    off = ["true"]
  }
  console "serial" {
    port      = "/dev/ttyUSB0"
    stop_bits = "1.5"
  }
}
