farm "f" {}
board_type "t" {}

board "b1" {
  type = "t"
  power "gpio" {
    line = -3
  }
  console "serial" {
    port = "/dev/serial/by-id/usb-x"
  }
  gpio "button" {
    line    = 4.5
    initial = 1
  }
}
